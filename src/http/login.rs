//! The dashboard's sign-in: the login page, the cookie it sets, signing out, and the
//! dashboard itself, which sends a visitor without a sign-in to the login page.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use super::caller::{self, COOKIE, SIGN_IN_LIFETIME};
use super::error::ApiError;
use super::{assets, hosts, AppState};
use crate::hub::ErrorCode;

const LOGIN_PAGE: &str = include_str!("../../web/login.html");
/// The login page loads only this server's style sheet and posts only to this server.
const LOGIN_CSP: &str =
    "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Registers `/login`, `/logout` and `/api/me`; `/` is [`dashboard`], which
/// [`super::compat`] serves when no `?action=` is asked for.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", super::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/api/me", super::get().to(me));
}

/// `GET /`: the dashboard, or a redirect to the login page for a visitor not signed in.
pub(super) async fn dashboard(req: &HttpRequest, state: &AppState) -> HttpResponse {
    match caller::identify(req, state).await {
        Ok(Some(_)) => assets::serve("/", state.mqtt.is_some()),
        _ => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "login"))
            .finish(),
    }
}

fn page(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", LOGIN_CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-store"))
        .body(LOGIN_PAGE.replace("{{MESSAGE}}", &escaped))
}

/// `GET /login`.
async fn login_page() -> HttpResponse {
    page(actix_web::http::StatusCode::OK, "")
}

#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

/// A form posted by a page of another site is refused: it could sign the browser in as
/// someone else, or out.
fn same_site(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    state
        .hosts
        .check_origin(req, state.scheme)
        .map_err(|hosts::Refused(why)| ApiError::new(ErrorCode::WrongHost, why))
}

/// `POST /login`: checks the name and password and sets the sign-in cookie.
async fn login(
    req: HttpRequest,
    form: web::Form<Credentials>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(e) = same_site(&req, &state) {
        return page(actix_web::http::StatusCode::MISDIRECTED_REQUEST, &e.message);
    }
    let Credentials { name, password } = form.into_inner();
    let from = req.peer_addr().map(|a| a.ip());
    match caller::sign_in(&state, from, &name, password).await {
        Ok(access) => {
            info!(account = %access.name, role = %access.role, from = ?from, "signed in");
            let value = state.cookie_key.sign(&access.name, SIGN_IN_LIFETIME);
            let cookie = Cookie::build(COOKIE, value)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.scheme == "https")
                .max_age(actix_web::cookie::time::Duration::seconds(
                    SIGN_IN_LIFETIME.as_secs() as i64,
                ))
                .finish();
            HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header((header::LOCATION, "./"))
                .finish()
        }
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            let text = if e.code == ErrorCode::LimitReached {
                e.message
            } else {
                "The name or password is wrong.".to_string()
            };
            page(status, &text)
        }
    }
}

/// `POST /logout`: forgets the sign-in cookie.
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = same_site(&req, &state) {
        return actix_web::ResponseError::error_response(&e);
    }
    let mut gone = Cookie::build(COOKIE, "").path("/").finish();
    gone.make_removal();
    HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header((header::LOCATION, "login"))
        .finish()
}

/// `GET /api/me`: who the caller is, for the dashboard to show and to know what it may do.
async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let access = caller::require(&req, &state, crate::auth::Role::Viewer).await?;
    let sign_in_required = state.auth.borrow().required();
    Ok(HttpResponse::Ok().json(json!({
        "name": access.name,
        "role": access.role.name(),
        "cameras": access.cameras.map(|c| c.iter().map(|id| id.as_str().to_string()).collect::<Vec<_>>()),
        "sign_in_required": sign_in_required,
    })))
}
