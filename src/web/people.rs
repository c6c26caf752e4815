//! People: everyone enrolled, searchable; enrollment from uploaded photos (bounded, the CLI's
//! checks and refusals in words), disable, enable and delete, all through [`Admin`] — the same
//! handler as the CLI and its socket.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::console::{Signed, refused};
use super::layout::{notice, page};
use super::session::Session;
use super::{Role, Web};
use crate::admin::{AdminError, Reply, Request};

/// Photos one enrollment form may carry.
pub const MAX_PHOTOS: usize = 5;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn people(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Query(search): Query<Search>,
) -> Response {
    people_page(&web, &signed.0, &search.q, None).await
}

async fn people_page(web: &Web, session: &Session, q: &str, done: Option<Markup>) -> Response {
    let Some(admin) = &web.parts.admin else {
        let text = "People are managed in the AWS backend (docs/aws.md), not here.";
        return page("People", Some(session), notice(false, text));
    };
    let users = match admin.handle(Request::ListUsers).await {
        Ok(Reply::Users { users }) => users,
        Ok(_) => Vec::new(),
        Err(e) => return page("People", Some(session), notice(false, &e.to_string())),
    };
    let needle = q.to_lowercase();
    let shown: Vec<_> = users
        .iter()
        .filter(|u| {
            needle.is_empty()
                || u.username.to_lowercase().contains(&needle)
                || u.name.to_lowercase().contains(&needle)
                || u.groups.iter().any(|g| g.to_lowercase().contains(&needle))
        })
        .collect();
    let admin_role = session.role == Role::Admin;
    let body = html! {
        @if let Some(done) = done { (done) }
        form.search method="get" action="/people" {
            input type="search" name="q" value=(q) placeholder="name, e-mail or group";
            button type="submit" { "Search" }
        }
        p { (shown.len()) " of " (users.len()) " people" }
        table #people {
            thead { tr { th { "Name" } th { "User" } th { "Groups" } th { "State" } @if admin_role { th { "Change" } } } }
            tbody {
                @for user in &shown {
                    tr {
                        td.name { (user.name) }
                        td { (user.username) }
                        td { (user.groups.iter().cloned().collect::<Vec<_>>().join(", ")) }
                        td { @if user.enabled { "enabled" } @else { "disabled" } }
                        @if admin_role {
                            td.actions {
                                form method="post" action="/people/enabled" {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input type="hidden" name="user" value=(user.username);
                                    input type="hidden" name="enabled" value=(if user.enabled { "false" } else { "true" });
                                    button type="submit" { @if user.enabled { "Disable" } @else { "Enable" } }
                                }
                                form.group method="post" action="/people/group" {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input type="hidden" name="user" value=(user.username);
                                    input name="group" placeholder="group" size="8" required;
                                    button type="submit" name="op" value="add" { "Add" }
                                    button type="submit" name="op" value="remove" { "Remove" }
                                }
                                form method="post" action="/people/delete" data-confirm=(format!("Delete {}? Their face embeddings, any kept photos and the door's offline grant for them are removed.", user.name)) {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    input type="hidden" name="user" value=(user.username);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin_role {
            h2 { "Enroll a person" }
            p.hint { "One to " (MAX_PHOTOS) " photos (JPEG or PNG): an ID photo or portraits, one face each, \
                      looking at the camera. Each photo gets the same quality checks as "
                      code { "facegate enroll" } "; a refused photo is named with why." }
            form #enroll method="post" action="/people/enroll" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(session.csrf);
                label { "E-mail (user) " input name="user" type="email" required; }
                label { "Name " input name="name" required; }
                label { "Groups " input name="groups" value="staff" placeholder="staff, night"; }
                label { "Photos " input name="photos" type="file" accept="image/jpeg,image/png" multiple required; }
                button type="submit" { "Enroll" }
            }
            p.hint { "Deleting a person removes their face embeddings, any kept enrollment photos and \
                      the door's offline grant for them." }
        }
    };
    page("People", Some(session), body)
}

pub async fn enroll(State(web): State<Arc<Web>>, signed: Signed, multipart: Multipart) -> Response {
    let form = match read_enrollment(multipart, web.parts.max_upload_bytes).await {
        Ok(form) => form,
        Err(why) => return people_page(&web, &signed.0, "", Some(notice(false, &why))).await,
    };
    if let Some(refusal) = signed.refusal(&form.csrf) {
        return refusal;
    }
    let Some(admin) = &web.parts.admin else {
        return refused("There is no embedded backend to enroll into.");
    };
    let groups = form
        .groups
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect();
    let request = Request::Enroll {
        user: form.user,
        name: form.name,
        photos: form.photos,
        groups,
        add_to_existing: false,
    };
    let done = match admin.handle(request).await {
        Ok(Reply::Enrolled { report }) => {
            tracing::info!(by = %signed.0.account, user = %report.user.username, "web console: enrolled");
            html! {
                (notice(true, &format!("Enrolled {} ({}): {} face(s) indexed.", report.user.name, report.user.username, report.face_ids.len())))
                @for warning in &report.warnings { (notice(false, warning)) }
            }
        }
        Ok(_) => notice(false, "Unexpected reply."),
        Err(AdminError::Rejected(why)) => notice(false, &format!("Not enrolled: {why}")),
        Err(AdminError::Failed(why)) => notice(false, &format!("Enrollment failed: {why}")),
    };
    people_page(&web, &signed.0, "", Some(done)).await
}

#[derive(Default)]
struct Enrollment {
    csrf: String,
    user: String,
    name: String,
    groups: String,
    photos: Vec<Vec<u8>>,
}

/// The multipart form, bounded: at most [`MAX_PHOTOS`] photos, `max_bytes` in all.
async fn read_enrollment(mut multipart: Multipart, max_bytes: usize) -> Result<Enrollment, String> {
    let mut form = Enrollment::default();
    let mut total = 0usize;
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        format!(
            "The upload could not be read (at most {MAX_PHOTOS} photos, {} MB in all): {e}",
            max_bytes / 1_000_000
        )
    };
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(unreadable)?;
        total += bytes.len();
        if total > max_bytes {
            return Err(format!(
                "The upload is over {} bytes: send fewer or smaller photos.",
                max_bytes
            ));
        }
        let text = || String::from_utf8_lossy(&bytes).trim().to_string();
        match name.as_str() {
            "csrf" => form.csrf = text(),
            "user" => form.user = text(),
            "name" => form.name = text(),
            "groups" => form.groups = text(),
            "photos" if !bytes.is_empty() => {
                if form.photos.len() == MAX_PHOTOS {
                    return Err(format!("At most {MAX_PHOTOS} photos at a time."));
                }
                form.photos.push(bytes.to_vec());
            }
            _ => {}
        }
    }
    if form.photos.is_empty() {
        return Err("No photo was uploaded.".into());
    }
    Ok(form)
}

#[derive(Deserialize)]
pub struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    group: String,
    /// `add` or `remove` (the group form's two buttons).
    #[serde(default)]
    op: String,
}

pub async fn set_enabled(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Form(form): Form<UserForm>,
) -> Response {
    change_user(&web, signed, form, |f| Request::SetEnabled {
        user: f.user.clone(),
        enabled: f.enabled.unwrap_or(false),
    })
    .await
}

/// `POST /people/group`: adds or removes one group (the name is checked by `Admin`).
pub async fn group(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Form(form): Form<UserForm>,
) -> Response {
    change_user(&web, signed, form, |f| {
        let (user, group) = (f.user.clone(), f.group.trim().to_string());
        if f.op == "remove" {
            Request::RemoveGroup { user, group }
        } else {
            Request::AddGroup { user, group }
        }
    })
    .await
}

pub async fn delete(
    State(web): State<Arc<Web>>,
    signed: Signed,
    Form(form): Form<UserForm>,
) -> Response {
    change_user(&web, signed, form, |f| Request::DeleteUser {
        user: f.user.clone(),
    })
    .await
}

async fn change_user(
    web: &Web,
    signed: Signed,
    form: UserForm,
    request: impl FnOnce(&UserForm) -> Request,
) -> Response {
    if let Some(refusal) = signed.refusal(&form.csrf) {
        return refusal;
    }
    let Some(admin) = &web.parts.admin else {
        return refused("There is no embedded backend here.");
    };
    let done = match admin.handle(request(&form)).await {
        Ok(Reply::Changed { user }) => notice(
            true,
            &format!(
                "{} is now {}; groups: {}.",
                user.name,
                if user.enabled { "enabled" } else { "disabled" },
                user.groups.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        Ok(Reply::Deleted { user, .. }) => notice(
            true,
            &format!("Deleted {user}: faces, kept photos and offline grant removed."),
        ),
        Ok(_) => notice(false, "Unexpected reply."),
        Err(e) => notice(false, &e.to_string()),
    };
    tracing::info!(by = %signed.0.account, user = %form.user, "web console: changed a person");
    people_page(web, &signed.0, "", Some(done)).await
}
