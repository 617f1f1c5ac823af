//! Camera controls: what a device offers, how a value is checked, and in what order the
//! desired values are applied.

use std::fmt;

use crate::config::{DesiredControl, DesiredValue};

/// What kind of value a control holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlType {
    /// A signed integer in `min..=max`, in steps of `step`.
    Integer,
    /// 0 or 1.
    Boolean,
    /// One of the menu items, by index.
    Menu,
    /// One of the menu items, by index; each item names an integer.
    IntegerMenu,
    /// An action; any value presses it.
    Button,
    /// A 64-bit integer.
    Integer64,
    /// A set of bits; `max` holds the bits that may be set.
    Bitmask,
    /// A type camfleet cannot set, with the device's own description of it.
    Unsupported(String),
}

/// One item of a menu control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// The value that selects this item.
    pub index: i64,
    /// The item's label.
    pub name: String,
}

/// The state flags of a control.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControlFlags {
    /// Exists but cannot be used.
    pub disabled: bool,
    /// Ignored now, usually because an automatic mode is on.
    pub inactive: bool,
    /// Can be read, not set.
    pub read_only: bool,
    /// Can be set, not read.
    pub write_only: bool,
    /// Locked while streaming.
    pub grabbed: bool,
    /// Changes by itself.
    pub volatile: bool,
}

/// One control of a device, with its range and current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlInfo {
    /// The device's own id for the control.
    pub id: u32,
    /// Lower-case name with underscores, as `v4l2-ctl -l` prints it.
    pub name: String,
    /// What kind of value it holds.
    pub kind: ControlType,
    /// Smallest value.
    pub min: i64,
    /// Largest value.
    pub max: i64,
    /// Step between values.
    pub step: i64,
    /// The device's default.
    pub default: i64,
    /// The current value, when it can be read.
    pub value: Option<i64>,
    /// Menu items, for menus.
    pub menu: Vec<MenuItem>,
    /// State flags.
    pub flags: ControlFlags,
}

/// Why a control could not be set or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No control by that name.
    #[error("camera has no control `{name}`; {hint}its controls are: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// `did you mean `NAME`? ` when a control's name is close, else empty.
        hint: String,
        /// The names there are, comma-separated.
        known: String,
    },
    /// The value does not fit the control's range.
    #[error("value {value} is not valid for `{name}`: {allowed}; nothing was changed")]
    Invalid {
        /// The control.
        name: String,
        /// The value asked for.
        value: i64,
        /// What would be valid.
        allowed: String,
    },
    /// The desired value names a menu item the control does not have.
    #[error("`{name}` has no menu item {item:?}; its items are: {items}")]
    NoSuchItem {
        /// The control.
        name: String,
        /// The item asked for.
        item: String,
        /// The items there are.
        items: String,
    },
    /// The control cannot be set now.
    #[error("`{name}` cannot be set: {why}")]
    NotSettable {
        /// The control.
        name: String,
        /// Why not.
        why: String,
    },
    /// The device refused the value.
    #[error("the device refused {value} for `{name}`: {why}")]
    Refused {
        /// The control.
        name: String,
        /// The value asked for.
        value: i64,
        /// The device's error.
        why: String,
    },
    /// The camera is not streaming, so its controls cannot be reached.
    #[error("camera is {state}; its controls can be used once it streams again")]
    Unavailable {
        /// The camera's state and reason.
        state: String,
    },
}

impl ControlInfo {
    /// Describes the valid values, e.g. `an integer from 0 to 255 in steps of 1`.
    #[must_use]
    pub fn allowed(&self) -> String {
        match &self.kind {
            ControlType::Boolean => "0 (off) or 1 (on)".to_string(),
            ControlType::Menu | ControlType::IntegerMenu => {
                let items: Vec<String> = self
                    .menu
                    .iter()
                    .map(|m| format!("{} ({})", m.index, m.name))
                    .collect();
                format!("one of {}", items.join(", "))
            }
            ControlType::Bitmask => format!("a bitmask within {:#x}", self.max),
            ControlType::Button => "any value (a press)".to_string(),
            ControlType::Unsupported(t) => format!("nothing: its type {t} is not supported"),
            ControlType::Integer | ControlType::Integer64 => {
                if self.step > 1 {
                    format!(
                        "an integer from {} to {} in steps of {}",
                        self.min, self.max, self.step
                    )
                } else {
                    format!("an integer from {} to {}", self.min, self.max)
                }
            }
        }
    }

    /// Checks `value` against the control's type, range, step and flags.
    ///
    /// # Errors
    /// [`ControlError::Invalid`] when the value does not fit the range, step, bits or menu;
    /// [`ControlError::NotSettable`] when the control cannot be set now.
    pub fn check(&self, value: i64) -> Result<(), ControlError> {
        let not_settable = |why: &str| ControlError::NotSettable {
            name: self.name.clone(),
            why: why.to_string(),
        };
        if self.flags.read_only {
            return Err(not_settable("it is read-only"));
        }
        if self.flags.disabled {
            return Err(not_settable("the device has disabled it"));
        }
        let fits = match &self.kind {
            ControlType::Unsupported(t) => {
                return Err(not_settable(&format!("its type {t} is not supported")))
            }
            ControlType::Button => true,
            ControlType::Boolean => value == 0 || value == 1,
            ControlType::Menu | ControlType::IntegerMenu => {
                self.menu.iter().any(|m| m.index == value)
            }
            ControlType::Bitmask => value >= 0 && value & !self.max == 0,
            ControlType::Integer | ControlType::Integer64 => {
                value >= self.min
                    && value <= self.max
                    && (self.step <= 1 || (value - self.min) % self.step == 0)
            }
        };
        if fits {
            Ok(())
        } else {
            Err(ControlError::Invalid {
                name: self.name.clone(),
                value,
                allowed: self.allowed(),
            })
        }
    }

    /// Turns a desired value from the configuration into the device's value.
    ///
    /// # Errors
    /// [`ControlError::NoSuchItem`] when a menu item's name is not one of the control's items.
    pub fn resolve(&self, desired: &DesiredValue) -> Result<i64, ControlError> {
        match desired {
            DesiredValue::MenuItem(item) => self
                .menu
                .iter()
                .find(|m| m.name.eq_ignore_ascii_case(item))
                .map(|m| m.index)
                .ok_or_else(|| ControlError::NoSuchItem {
                    name: self.name.clone(),
                    item: item.clone(),
                    items: self
                        .menu
                        .iter()
                        .map(|m| format!("{:?}", m.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            DesiredValue::Int(v) => Ok(*v),
            DesiredValue::Bool(b) => Ok(i64::from(*b)),
        }
    }
}

/// Finds a control by name; the error lists the names there are.
///
/// # Errors
/// [`ControlError::Unknown`], listing the names there are, when none matches.
pub fn find<'a>(controls: &'a [ControlInfo], name: &str) -> Result<&'a ControlInfo, ControlError> {
    controls.iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<&str> = controls.iter().map(|c| c.name.as_str()).collect();
        ControlError::Unknown {
            name: name.to_string(),
            hint: crate::config::closest(name, &names)
                .map(|best| format!("did you mean `{best}`? "))
                .unwrap_or_default(),
            known: names.join(", "),
        }
    })
}

/// Turns a device's control label into the name `v4l2-ctl -l` prints: lower case, every
/// run of other characters between letters or digits becomes one `_`.
#[must_use]
pub fn normalize_name(label: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

/// Whether a control switches an automatic mode that gates manual values (auto exposure,
/// auto white balance, autofocus, auto gain).
#[must_use]
pub fn is_automatic_mode(name: &str) -> bool {
    name.contains("auto") || name.ends_with("_automatic")
}

/// The desired controls in the order they must be applied: automatic modes first, since
/// a device refuses a manual exposure while auto exposure is on; otherwise file order.
#[must_use]
pub fn apply_order(desired: &[DesiredControl]) -> Vec<&DesiredControl> {
    let mut ordered: Vec<&DesiredControl> = desired.iter().collect();
    ordered.sort_by_key(|d| !is_automatic_mode(&d.name));
    ordered
}

/// A desired control value that is not in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlProblem {
    /// The control.
    pub name: String,
    /// The value asked for (0 when it could not be resolved).
    pub desired: i64,
    /// What the device holds, when it could be read.
    pub actual: Option<i64>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ControlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An integer control for tests.
    pub(crate) fn integer(min: i64, max: i64, step: i64) -> ControlInfo {
        ControlInfo {
            id: 1,
            name: "brightness".into(),
            kind: ControlType::Integer,
            min,
            max,
            step,
            default: min,
            value: Some(min),
            menu: vec![],
            flags: ControlFlags::default(),
        }
    }

    #[test]
    fn names_match_v4l2_ctl() {
        assert_eq!(normalize_name("Brightness"), "brightness");
        assert_eq!(
            normalize_name("White Balance Temperature, Auto"),
            "white_balance_temperature_auto"
        );
        assert_eq!(
            normalize_name("  Power Line Frequency "),
            "power_line_frequency"
        );
        assert_eq!(normalize_name("Exposure (Absolute)"), "exposure_absolute");
    }

    #[test]
    fn values_are_checked_not_clamped() {
        let c = integer(0, 100, 5);
        assert!(c.check(50).is_ok());
        let err = c.check(101).unwrap_err().to_string();
        assert!(err.contains("from 0 to 100 in steps of 5"), "{err}");
        assert!(c.check(52).is_err());
        assert!(c.check(-1).is_err());
    }

    #[test]
    fn read_only_and_unsupported_refuse() {
        let mut c = integer(0, 1, 1);
        c.flags.read_only = true;
        assert!(c.check(0).unwrap_err().to_string().contains("read-only"));
        let mut u = integer(0, 1, 1);
        u.kind = ControlType::Unsupported("string".into());
        assert!(u.check(0).is_err());
    }

    #[test]
    fn automatic_modes_come_first() {
        let d = |n: &str| DesiredControl {
            name: n.into(),
            value: DesiredValue::Int(1),
        };
        let desired = vec![d("exposure_time_absolute"), d("auto_exposure"), d("gain")];
        let order: Vec<&str> = apply_order(&desired)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(order, ["auto_exposure", "exposure_time_absolute", "gain"]);
    }
}
