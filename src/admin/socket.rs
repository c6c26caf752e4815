//! The running service's administration socket: `<data_dir>/admin.sock`, mode 0660 and group
//! `facegate` when that group exists (the data directory itself is 0700: root and the service's
//! user reach it). One JSON line in — a [`Request`] — one JSON line out — `{"Ok": reply}` or
//! `{"Err": {"kind", "message"}}` — then the connection closes (docs/operations.md). Requests are
//! handled one at a time, on the runtime's workers, never on the door's loop.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::{Admin, AdminError, Reply, Request};

/// The socket's file name in the data directory.
pub const SOCKET: &str = "admin.sock";
/// The largest request accepted: ten 20 MB photos in base64, and some.
pub const MAX_REQUEST: u64 = 300 * 1024 * 1024;
/// How long a client waits for the service's answer (an enrollment runs the models).
const REPLY_WAIT: Duration = Duration::from_secs(120);

/// Where the socket of the service on `data_dir` is.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Listens on `data_dir`'s socket, replacing a stale one (a socket nobody answers on).
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = path(data_dir);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use: is another facegate running?", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = group_id("facegate") {
        std::os::unix::fs::chown(&path, None, Some(gid))?;
    }
    Ok(listener)
}

/// The id of group `name` in /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// Answers requests until the listener fails; one at a time.
pub async fn serve(listener: UnixListener, admin: Arc<Admin>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(%e, "administration socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = answer(stream, &admin).await {
            tracing::warn!(%e, "administration socket: a request failed");
        }
    }
}

async fn answer(stream: tokio::net::UnixStream, admin: &Admin) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    tokio::io::BufReader::new(read.take(MAX_REQUEST + 1))
        .read_until(b'\n', &mut line)
        .await?;
    let reply: Result<Reply, AdminError> = if line.len() as u64 > MAX_REQUEST {
        Err(AdminError::Rejected(format!(
            "the request is over {} MB",
            MAX_REQUEST / 1024 / 1024
        )))
    } else {
        match serde_json::from_slice::<Request>(&line) {
            Ok(request) => {
                tracing::info!(op = %op_name(&request), "administration request");
                admin.handle(request).await
            }
            Err(e) => Err(AdminError::Rejected(format!("not a request: {e}"))),
        }
    };
    let mut text = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write.write_all(&text).await?;
    write.shutdown().await
}

fn op_name(request: &Request) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// Sends `request` to the service on `data_dir`; `None` when no service answers there.
pub fn send(data_dir: &Path, request: &Request) -> Option<Result<Reply, AdminError>> {
    let mut stream = UnixStream::connect(path(data_dir)).ok()?;
    Some(exchange(&mut stream, request))
}

fn exchange(stream: &mut UnixStream, request: &Request) -> Result<Reply, AdminError> {
    let failed =
        |e: std::io::Error| AdminError::Failed(format!("the service's administration socket: {e}"));
    stream.set_read_timeout(Some(REPLY_WAIT)).map_err(failed)?;
    let mut text = serde_json::to_vec(request).map_err(|e| AdminError::Failed(e.to_string()))?;
    text.push(b'\n');
    stream.write_all(&text).map_err(failed)?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST))
        .read_line(&mut line)
        .map_err(failed)?;
    serde_json::from_str(&line)
        .map_err(|e| AdminError::Failed(format!("the service answered nonsense: {e}")))?
}
