//! The other hosts on the MQTT broker, for the fleet view of the dashboard: their cameras
//! as their hosts publish them, and commands to those cameras, carried over the broker.
//! Video never comes through here: browsers fetch it from each camera's own host.
//!
//! Accounts limited to a list of cameras see only those, all on this host: the fleet is
//! for accounts without a list.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::{caller, AppState};
use crate::auth::{Access, Role};
use crate::hub::ErrorCode;
use crate::mqtt::{FleetView, RemoteCommand, RemoteThumbnail};

/// `GET /api/fleet`: `{"hosts": [{"host_id", "online", "cameras": [STATE, ...]}]}`, the
/// other hosts on the broker; no hosts without an MQTT link.
pub async fn hosts(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let access = caller::require(&req, &state, Role::Viewer).await?;
    let fleet = match (&state.mqtt, access.cameras.is_none()) {
        (Some(link), true) => link
            .actor
            .send(FleetView)
            .await
            .map_err(|_| ApiError::stopping())?,
        _ => serde_json::json!({ "hosts": [] }),
    };
    Ok(HttpResponse::Ok().json(fleet))
}

/// `GET /api/fleet/{host}/{camera}/thumbnail.jpg`: the latest thumbnail that host
/// published of the camera (its `snapshot_interval`), or 404 when it publishes none.
pub async fn thumbnail(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let access = caller::require(&req, &state, Role::Viewer).await?;
    let link = fleet_for(&state, &access)?;
    let (host, camera) = path.into_inner();
    let found = link
        .send(RemoteThumbnail {
            host: host.clone(),
            camera: camera.clone(),
        })
        .await
        .map_err(|_| ApiError::stopping())?;
    match found {
        Some(jpeg) => Ok(HttpResponse::Ok()
            .content_type("image/jpeg")
            .insert_header(("Cache-Control", "no-cache, no-store"))
            .body(jpeg)),
        None => Err(ApiError::new(
            ErrorCode::UnknownCamera,
            format!(
                "host `{host}` has published no thumbnail of `{camera}`; set \
                 `mqtt.snapshot_interval` on that host"
            ),
        )),
    }
}

/// `POST /api/fleet/{host}/{camera}/control/{name}` with the value as the body (a number,
/// `ON`/`OFF` or a menu item's name): the outcome the camera's host publishes.
pub async fn set_control(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: String,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (host, camera, control) = path.into_inner();
    send(&req, &state, host, camera, Some(control), body).await
}

/// `POST /api/fleet/{host}/{camera}/reset`: puts that camera back to its host's file.
pub async fn reset(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (host, camera) = path.into_inner();
    send(&req, &state, host, camera, None, String::new()).await
}

async fn send(
    req: &HttpRequest,
    state: &AppState,
    host: String,
    camera: String,
    control: Option<String>,
    value: String,
) -> Result<HttpResponse, ApiError> {
    let access = caller::require(req, state, Role::Operator).await?;
    if let Err(super::hosts::Refused(why)) = state.hosts.check_origin(req, state.scheme) {
        return Err(ApiError::new(ErrorCode::WrongHost, why));
    }
    let link = fleet_for(state, &access)?;
    let outcome = link
        .send(RemoteCommand {
            host,
            camera,
            control,
            value: value.trim().to_string(),
        })
        .await
        .map_err(|_| ApiError::stopping())?;
    match outcome {
        Ok(outcome) => Ok(HttpResponse::Ok().json(outcome)),
        Err(e) => Err(e.into()),
    }
}

/// The link, if this server has one and `access` may reach other hosts.
fn fleet_for<'a>(
    state: &'a AppState,
    access: &Access,
) -> Result<&'a actix::Addr<crate::mqtt::MqttLink>, ApiError> {
    if access.cameras.is_some() {
        return Err(ApiError::new(
            ErrorCode::NotPermitted,
            format!(
                "`{}` may use only the cameras listed for it on this host; the fleet is for \
                 accounts without a camera list",
                access.name
            ),
        ));
    }
    state.mqtt.as_ref().map(|link| &link.actor).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownCamera,
            "this host has no MQTT link, so it knows no other hosts; add `mqtt:` to cameras.yaml",
        )
    })
}
