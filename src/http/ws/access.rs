//! What a session may do: its account's role and cameras, checked before a command
//! reaches the hub. A camera the account may not see does not exist for it.

use tracing::{info, warn};

use super::WsSession;
use crate::auth::{Access, Role};
use crate::camera::CameraId;
use crate::http::wire::Command;
use crate::hub::CommandError;

impl WsSession {
    /// The command, if this session may send it; a subscription to "every camera" becomes
    /// one to every camera the account may see.
    pub(super) fn permit(&self, command: Command) -> Result<Command, CommandError> {
        if matches!(command, Command::Authenticate { .. }) {
            return Ok(command);
        }
        let Some(access) = &self.access else {
            return Err(CommandError::NotSignedIn(
                "this connection is not signed in; send Authenticate with an API token \
                 (`camfleet token new`), or connect with the dashboard's sign-in cookie or \
                 `Authorization: Bearer TOKEN`"
                    .into(),
            ));
        };
        if command.changes_settings() && !access.may(Role::Operator) {
            return Err(CommandError::NotPermitted(access.refusal_to_change()));
        }
        let hidden = |camera: &CameraId| (!access.sees(camera)).then(|| unknown(access, camera));
        match command {
            Command::Subscribe {
                request_id,
                cameras,
                send_frames,
                max_fps,
                preview,
            } => {
                if let Some(e) = cameras.iter().find_map(hidden) {
                    return Err(e);
                }
                let cameras = match (&access.cameras, cameras.is_empty()) {
                    (Some(mine), true) => mine.clone(),
                    _ => cameras,
                };
                Ok(Command::Subscribe {
                    request_id,
                    cameras,
                    send_frames,
                    max_fps,
                    preview,
                })
            }
            Command::Unsubscribe { ref cameras, .. } => match cameras.iter().find_map(hidden) {
                Some(e) => Err(e),
                None => Ok(command),
            },
            Command::SetControl { ref camera, .. }
            | Command::GetControls { ref camera, .. }
            | Command::ResetControls { ref camera, .. } => match hidden(camera) {
                Some(e) => Err(e),
                None => Ok(command),
            },
            Command::ListCameras | Command::Authenticate { .. } => Ok(command),
        }
    }

    /// Signs this session in with an API token.
    pub(super) fn authenticate(&mut self, token: &str) -> Result<(), CommandError> {
        let auth = self.auth.borrow().clone();
        if !auth.required() {
            // An open server: everyone already may do everything.
            return Ok(());
        }
        if let Some(access) = auth.by_token(token) {
            info!(session = ?self.id, account = %access.name, role = %access.role, "signed in with a token");
            self.access = Some(access);
            Ok(())
        } else {
            warn!(session = ?self.id, "a client presented a wrong token");
            Err(CommandError::NotSignedIn(
                "the token is wrong; make one with `camfleet token new NAME --role ROLE` and \
                 put its hash in cameras.yaml"
                    .into(),
            ))
        }
    }

    /// Who this session's changes are made by.
    pub(super) fn changer(&self) -> crate::hub::Changer {
        crate::hub::Changer {
            account: self
                .access
                .as_ref()
                .map_or_else(String::new, |a| a.name.clone()),
            address: self.address,
        }
    }

    /// Whether this session may see `camera`.
    pub(super) fn sees(&self, camera: &CameraId) -> bool {
        self.access.as_ref().is_some_and(|a| a.sees(camera))
    }

    /// Whether this session reads what only admins may (reload errors quote the file).
    pub(super) fn is_admin(&self) -> bool {
        self.access.as_ref().is_some_and(|a| a.may(Role::Admin))
    }
}

fn unknown(access: &Access, camera: &CameraId) -> CommandError {
    let known: Vec<&str> = access
        .cameras
        .iter()
        .flatten()
        .map(CameraId::as_str)
        .collect();
    CommandError::UnknownCamera {
        id: camera.to_string(),
        known: known.join(", "),
    }
}
