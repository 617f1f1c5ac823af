//! The camera actor's controls: applying the configured values after every open, live
//! changes between frames, and going back to the configuration.

use super::CameraActor;
use crate::camera::control::{self, ControlError, ControlProblem, ControlType};
use crate::camera::source::SourceError;
use crate::config::DesiredControl;
use crate::hub::{Applied, CommandError, SetControl};
use tracing::warn;

impl CameraActor {
    /// Applies the configuration's controls, automatic modes first, then the values set
    /// live; reads each back and records what did not take.
    pub(super) fn apply_desired(&mut self) -> Result<(), SourceError> {
        let device = self
            .device
            .as_mut()
            .expect("apply_desired runs on an open device");
        self.controls = device.controls()?;
        self.problems.clear();
        let live = self.overrides.iter().map(|(name, value)| DesiredControl {
            name: name.clone(),
            value: crate::config::DesiredValue::Int(*value),
        });
        let wanted: Vec<DesiredControl> = self.desired.iter().cloned().chain(live).collect();
        for want in control::apply_order(&wanted) {
            let outcome = control::find(&self.controls, &want.name).and_then(|info| {
                let value = info.resolve(&want.value)?;
                info.check(value)?;
                let actual = device.set_control(info, value)?;
                Ok((value, actual))
            });
            match outcome {
                Ok((value, actual)) if value != actual => self.problems.push(ControlProblem {
                    name: want.name.clone(),
                    desired: value,
                    actual: Some(actual),
                    message: format!("asked for {value}, the device holds {actual}"),
                }),
                Ok(_) => {}
                Err(e) => self.problems.push(ControlProblem {
                    name: want.name.clone(),
                    desired: want.value.as_int().unwrap_or(0),
                    actual: None,
                    message: e.to_string(),
                }),
            }
        }
        self.control_writes_failed +=
            self.problems.iter().filter(|p| p.actual.is_none()).count() as u64;
        for p in &self.problems {
            warn!(camera = %self.id, control = %p.name, "desired control not in effect: {}", p.message);
        }
        self.controls = device.controls()?;
        Ok(())
    }

    pub(super) fn unavailable(&self) -> CommandError {
        let state = match self.reason() {
            r if r.is_empty() => self.state().to_string(),
            r => format!("{} ({r})", self.state()),
        };
        self.control_error(ControlError::Unavailable { state })
    }

    pub(super) fn control_error(&self, error: ControlError) -> CommandError {
        CommandError::Control {
            camera: self.id.clone(),
            error,
        }
    }

    pub(super) fn set_control(&mut self, msg: &SetControl) -> Result<Applied, CommandError> {
        if self.device.is_none() {
            return Err(self.unavailable());
        }
        let info = control::find(&self.controls, &msg.control)
            .cloned()
            .and_then(|info| info.check(msg.value).map(|_| info))
            .map_err(|e| self.control_error(e))?;
        let device = self.device.as_mut().expect("checked above");
        let actual = device.set_control(&info, msg.value).map_err(|e| {
            self.control_writes_failed += 1;
            self.control_error(e)
        })?;
        let remembered = info.kind != ControlType::Button;
        if remembered {
            self.overrides.retain(|(name, _)| *name != info.name);
            self.overrides.push((info.name.clone(), msg.value));
            self.problems.retain(|p| p.name != info.name);
        }
        // Other controls may change with this one (an automatic mode gates manual values).
        match self.device.as_mut().map(|d| d.controls()) {
            Some(Ok(controls)) => self.controls = controls,
            Some(Err(e)) => self.fail(&e),
            None => {}
        }
        self.status_due = true;
        Ok(Applied {
            value: actual,
            remembered,
        })
    }

    /// Forgets the values set while running: each goes back to the device's default
    /// unless the configuration sets it, then the configured values are applied again.
    pub(super) fn reset_controls(&mut self) -> Result<(), CommandError> {
        let forgotten = std::mem::take(&mut self.overrides);
        let Some(device) = self.device.as_mut() else {
            return Ok(());
        };
        for (name, _) in forgotten {
            if self.desired.iter().any(|d| d.name == name) {
                continue;
            }
            if let Ok(info) = control::find(&self.controls, &name) {
                if info.check(info.default).is_ok() {
                    let _ = device.set_control(info, info.default);
                }
            }
        }
        if let Err(e) = self.apply_desired() {
            self.fail(&e);
        }
        self.status_due = true;
        Ok(())
    }
}
