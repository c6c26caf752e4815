//! In-memory ports for the trigger tests, written once. They behave as the AWS services do
//! where it matters to a security rule: the bucket stamps uploads in whole seconds, as S3's
//! `Last-Modified` does; a "face" is the photo's bytes, so a frame matches exactly the faces
//! indexed from identical bytes (real matching is tested on real photos elsewhere). A
//! [`Faults`] switch makes any one operation of any port fail with a chosen error.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use facegate::backend::embedded::SledLedger;
use facegate::backend::triggers::{TriggerConfig, TriggerPorts};
use facegate::backend::{
    BackendError, Directory, FaceIndex, FaceMatch, FaceRecord, ObjectInfo, ObjectStore,
    TriggerLedger, UserLookup,
};
use facegate::clock::{Clock, ManualClock, Millis};
use facegate::matching::{DecisionRule, Threshold};

/// Which operation of which port fails, and how, and which operations were called; shared by
/// every port of a [`Ports`]. Operations are named `port.method`: `signin.head`, `faces.search`.
#[derive(Clone, Default)]
pub struct Faults {
    failing: Arc<Mutex<Option<(String, BackendError)>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    /// From now on `op` fails with `error`.
    pub fn fail(&self, op: &str, error: BackendError) {
        *self.failing.lock().unwrap() = Some((op.to_string(), error));
    }

    pub fn clear(&self) {
        *self.failing.lock().unwrap() = None;
    }

    /// The operations called since the last call of this, in order, each once.
    pub fn take_calls(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for op in std::mem::take(&mut *self.calls.lock().unwrap()) {
            if !seen.contains(&op) {
                seen.push(op);
            }
        }
        seen
    }

    fn check(&self, op: &str) -> Result<(), BackendError> {
        self.calls.lock().unwrap().push(op.to_string());
        match &*self.failing.lock().unwrap() {
            Some((failing, error)) if failing == op => Err(error.clone()),
            _ => Ok(()),
        }
    }
}

/// A bucket in memory. Like S3, it keeps the upload time in whole seconds.
pub struct Bucket {
    name: &'static str,
    objects: Mutex<HashMap<String, (Vec<u8>, ObjectInfo)>>,
    clock: ManualClock,
    faults: Faults,
}

impl Bucket {
    /// Puts an object as if it had been uploaded at `at_ms` (truncated to the second, as S3
    /// would): a frame left over or planted before a challenge.
    pub fn plant(&self, key: &str, bytes: Vec<u8>, at_ms: u64) {
        let info = ObjectInfo {
            size: bytes.len() as u64,
            uploaded_at_ms: at_ms / 1000 * 1000,
            content_type: "image/jpeg".into(),
        };
        self.objects
            .lock()
            .unwrap()
            .insert(key.into(), (bytes, info));
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.objects.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn check(&self, op: &str) -> Result<(), BackendError> {
        self.faults.check(&format!("{}.{op}", self.name))
    }
}

#[async_trait]
impl ObjectStore for Bucket {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), BackendError> {
        self.check("put")?;
        self.plant(key, bytes, self.clock.now_ms());
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.check("get")?;
        let objects = self.objects.lock().unwrap();
        Ok(objects.get(key).map(|(b, _)| b.clone()))
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        self.check("head")?;
        let objects = self.objects.lock().unwrap();
        Ok(objects.get(key).map(|(_, i)| i.clone()))
    }
    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.check("delete")?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

/// A face index where a face is the photo's bytes.
#[derive(Default)]
pub struct Faces {
    faces: Mutex<Vec<(String, Vec<u8>)>>,
    faults: Faults,
}

impl Faces {
    /// Every indexed FaceId.
    pub fn ids(&self) -> Vec<String> {
        let faces = self.faces.lock().unwrap();
        faces.iter().map(|(id, _)| id.clone()).collect()
    }
}

#[async_trait]
impl FaceIndex for Faces {
    async fn index_face(&self, image: &[u8], _external: &str) -> Result<String, BackendError> {
        self.faults.check("faces.index")?;
        let mut faces = self.faces.lock().unwrap();
        let id = format!("face-{}", faces.len() + 1);
        faces.push((id.clone(), image.to_vec()));
        Ok(id)
    }
    async fn search_by_image(
        &self,
        image: &[u8],
        _max: usize,
    ) -> Result<Vec<FaceMatch>, BackendError> {
        self.faults.check("faces.search")?;
        let faces = self.faces.lock().unwrap();
        Ok(faces
            .iter()
            .filter(|(_, bytes)| bytes == image)
            .map(|(id, _)| FaceMatch {
                face_id: id.clone(),
                similarity: 99.0,
            })
            .collect())
    }
    async fn face_count(&self) -> Result<usize, BackendError> {
        self.faults.check("faces.count")?;
        Ok(self.faces.lock().unwrap().len())
    }
    async fn compare(&self, a: &[u8], b: &[u8]) -> Result<f32, BackendError> {
        Ok(if a == b { 99.0 } else { 0.0 })
    }
    async fn delete_faces(&self, ids: &[String]) -> Result<(), BackendError> {
        self.faces
            .lock()
            .unwrap()
            .retain(|(id, _)| !ids.contains(id));
        Ok(())
    }
}

/// The FaceId → user table.
#[derive(Default)]
pub struct Table {
    rows: Mutex<HashMap<String, String>>,
    faults: Faults,
}

impl Table {
    /// Every (FaceId, user) row, sorted.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<_> = self.rows.lock().unwrap().clone().into_iter().collect();
        rows.sort();
        rows
    }
}

#[async_trait]
impl Directory for Table {
    async fn put_face(&self, r: FaceRecord) -> Result<(), BackendError> {
        self.faults.check("directory.put")?;
        self.rows.lock().unwrap().insert(r.face_id, r.username);
        Ok(())
    }
    async fn user_of_face(&self, id: &str) -> Result<Option<String>, BackendError> {
        self.faults.check("directory.user_of_face")?;
        Ok(self.rows.lock().unwrap().get(id).cloned())
    }
    async fn faces_of_user(&self, user: &str) -> Result<Vec<String>, BackendError> {
        self.faults.check("directory.faces_of_user")?;
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|(_, u)| *u == user)
            .map(|(f, _)| f.clone())
            .collect())
    }
    async fn delete_face(&self, id: &str) -> Result<(), BackendError> {
        self.rows.lock().unwrap().remove(id);
        Ok(())
    }
}

/// The user pool's list of users.
pub struct Pool {
    users: HashSet<String>,
    faults: Faults,
}

#[async_trait]
impl UserLookup for Pool {
    async fn user_exists(&self, user: &str) -> Result<bool, BackendError> {
        self.faults.check("users.exists")?;
        Ok(self.users.contains(user))
    }
}

/// The trigger-only ledger: the embedded one (sled, in a temporary database), breakable.
pub struct Ledger {
    inner: SledLedger,
    faults: Faults,
}

#[async_trait]
impl TriggerLedger for Ledger {
    async fn verdict(&self, id: &str) -> Result<Option<bool>, BackendError> {
        self.faults.check("ledger.verdict")?;
        self.inner.verdict(id).await
    }
    async fn file_verdict(
        &self,
        id: &str,
        correct: bool,
        expires_at_ms: Millis,
    ) -> Result<bool, BackendError> {
        self.faults.check("ledger.file_verdict")?;
        self.inner.file_verdict(id, correct, expires_at_ms).await
    }
    async fn failures_since(
        &self,
        username: &str,
        since_ms: Millis,
    ) -> Result<usize, BackendError> {
        self.faults.check("ledger.failures_since")?;
        self.inner.failures_since(username, since_ms).await
    }
    async fn record_failure(
        &self,
        username: &str,
        at_ms: Millis,
        keep_until_ms: Millis,
    ) -> Result<(), BackendError> {
        self.faults.check("ledger.record_failure")?;
        self.inner
            .record_failure(username, at_ms, keep_until_ms)
            .await
    }
    async fn clear_failures(&self, username: &str) -> Result<(), BackendError> {
        self.faults.check("ledger.clear_failures")?;
        self.inner.clear_failures(username).await
    }
}

/// The trigger ports over in-memory services, with handles on each.
pub struct Ports {
    pub ports: TriggerPorts,
    pub signin: Arc<Bucket>,
    pub signup: Arc<Bucket>,
    pub faces: Arc<Faces>,
    pub table: Arc<Table>,
    pub clock: ManualClock,
    pub faults: Faults,
}

/// Ports whose pool knows `users`, with the clock at `start_ms`.
pub fn ports(users: &[&str], start_ms: u64) -> Ports {
    let clock = ManualClock::at(start_ms);
    let faults = Faults::default();
    let bucket = |name| {
        Arc::new(Bucket {
            name,
            objects: Mutex::default(),
            clock: clock.clone(),
            faults: faults.clone(),
        })
    };
    let (signin, signup) = (bucket("signin"), bucket("signup"));
    let faces = Arc::new(Faces {
        faults: faults.clone(),
        ..Faces::default()
    });
    let table = Arc::new(Table {
        faults: faults.clone(),
        ..Table::default()
    });
    let ports = TriggerPorts {
        signin: signin.clone(),
        signup: signup.clone(),
        faces: faces.clone(),
        directory: table.clone(),
        users: Arc::new(Pool {
            users: users.iter().map(|u| u.to_string()).collect(),
            faults: faults.clone(),
        }),
        ledger: Arc::new(Ledger {
            inner: SledLedger::open(&sled::Config::new().temporary(true).open().unwrap()).unwrap(),
            faults: faults.clone(),
        }),
        clock: Arc::new(clock.clone()),
        // Rekognition's percent, as the Lambda runs it.
        config: TriggerConfig {
            rule: DecisionRule::new(Threshold::Fixed(95.0), 1.0),
            ..TriggerConfig::default()
        },
    };
    Ports {
        ports,
        signin,
        signup,
        faces,
        table,
        clock,
        faults,
    }
}

/// A log sink for `tracing`, to check that something was logged. It is the test binary's
/// global subscriber (a scoped one misses events whose callsite another test thread saw
/// first), so a test looks only for lines that name its own user.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// The buffer every event at INFO and above of this test binary goes to.
    pub fn global() -> &'static LogBuffer {
        static GLOBAL: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(|| {
            let logs = LogBuffer::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            logs
        })
    }

    /// Where the log stands now, for [`LogBuffer::lines_since`].
    pub fn mark(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The lines logged after `mark` that contain `needle`. (Tests share the buffer, so none
    /// clears it: each reads its own part.)
    pub fn lines_since(&self, mark: usize, needle: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap();
        let text = String::from_utf8_lossy(&bytes[mark.min(bytes.len())..]).into_owned();
        text.lines()
            .filter(|l| l.contains(needle))
            .map(String::from)
            .collect()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
