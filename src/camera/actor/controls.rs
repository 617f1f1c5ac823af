//! The camera actor's controls: applying the configured values and the overrides after
//! every open, changes between frames, and going back to the configuration.

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
        let link = &mut self.link;
        let Some(device) = link.device.as_mut() else {
            return Err(SourceError::Failed(
                "the device closed while configuring it".into(),
            ));
        };
        link.controls = device.controls()?;
        link.problems.clear();
        let overrides = self.overrides.iter().map(|(name, value)| DesiredControl {
            name: name.clone(),
            value: crate::config::DesiredValue::Int(*value),
        });
        let wanted: Vec<DesiredControl> = self
            .settings
            .desired
            .iter()
            .cloned()
            .chain(overrides)
            .collect();
        for want in control::apply_order(&wanted) {
            let outcome = control::find(&link.controls, &want.name).and_then(|info| {
                let value = info.resolve(&want.value)?;
                info.check(value)?;
                let actual = device.set_control(info, value)?;
                Ok((value, actual))
            });
            match outcome {
                Ok((value, actual)) if value != actual => link.problems.push(ControlProblem {
                    name: want.name.clone(),
                    desired: value,
                    actual: Some(actual),
                    message: format!("asked for {value}, the device holds {actual}"),
                }),
                Ok(_) => {}
                Err(e) => link.problems.push(ControlProblem {
                    name: want.name.clone(),
                    desired: want.value.as_int().unwrap_or(0),
                    actual: None,
                    message: e.to_string(),
                }),
            }
        }
        self.counters.control_writes_failed +=
            link.problems.iter().filter(|p| p.actual.is_none()).count() as u64;
        for p in &link.problems {
            warn!(camera = %self.settings.id, control = %p.name, "desired control not in effect: {}", p.message);
        }
        link.controls = device.controls()?;
        Ok(())
    }

    pub(super) fn unavailable(&self) -> CommandError {
        let state = match self.state.reason() {
            "" => self.state.to_string(),
            r => format!("{} ({r})", self.state),
        };
        self.control_error(ControlError::Unavailable { state })
    }

    pub(super) fn control_error(&self, error: ControlError) -> CommandError {
        CommandError::Control {
            camera: self.settings.id.clone(),
            error,
        }
    }

    pub(super) fn set_control(&mut self, msg: &SetControl) -> Result<Applied, CommandError> {
        if self.link.device.is_none() {
            return Err(self.unavailable());
        }
        let info = control::find(&self.link.controls, &msg.control)
            .cloned()
            .and_then(|info| info.check(msg.value).map(|()| info))
            .map_err(|e| self.control_error(e))?;
        let device = self.link.device.as_mut().expect("checked above");
        let actual = match device.set_control(&info, msg.value) {
            Ok(actual) => actual,
            Err(e) => {
                self.counters.control_writes_failed += 1;
                return Err(self.control_error(e));
            }
        };
        let is_override = info.kind != ControlType::Button;
        if is_override {
            self.overrides.retain(|(name, _)| *name != info.name);
            self.overrides.push((info.name.clone(), msg.value));
            self.link.problems.retain(|p| p.name != info.name);
        }
        // Other controls may change with this one (an automatic mode gates manual values),
        // so all are read again; the answer carries this one as the device now has it.
        match self.link.device.as_mut().map(|d| d.controls()) {
            Some(Ok(controls)) => self.link.controls = controls,
            Some(Err(e)) => self.fail(&e),
            None => {}
        }
        let mut control = control::find(&self.link.controls, &info.name)
            .cloned()
            .unwrap_or(info);
        control.value = Some(actual);
        self.status_due = true;
        self.changes_applied += 1;
        Ok(Applied {
            saved: None,
            control,
            is_override,
            order: self.changes_applied,
        })
    }

    /// Forgets the overrides: each control goes back to the device's default unless the
    /// configuration sets it, then the configured values are applied again.
    pub(super) fn reset_controls(&mut self) {
        let forgotten = std::mem::take(&mut self.overrides);
        let Some(device) = self.link.device.as_mut() else {
            return;
        };
        for (name, _) in forgotten {
            if self.settings.desired.iter().any(|d| d.name == name) {
                continue;
            }
            if let Ok(info) = control::find(&self.link.controls, &name) {
                if info.check(info.default).is_ok() {
                    let _ = device.set_control(info, info.default);
                }
            }
        }
        if let Err(e) = self.apply_desired() {
            self.fail(&e);
        }
        self.status_due = true;
    }
}
