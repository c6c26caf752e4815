//! MQTT against Mosquitto from Debian (a broker started here on a free 127.0.0.1 port) with
//! `mosquitto_sub` as the independent client: Home Assistant discovery documents field by
//! field, retained availability and state, events in order, the last will, HA's restart
//! announcement, and a broker outage that loses nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use facegate::clock::SystemClock;
use facegate::events::{DoorEvent, EventBus, Outcome, UnlockOrigin, Via};
use facegate::monitor::Monitor;
use facegate::sinks::mqtt::MqttConfig;
use facegate::sinks::mqtt::client::Mqtt;
use facegate::store::audit::AuditOutbox;
use serde_json::Value;

/// `mosquitto`'s path, or `None` (skip) — a failure when CI requires the peers.
fn mosquitto() -> Option<PathBuf> {
    let found = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_some() && Command::new("mosquitto_sub").arg("--help").output().is_ok() {
        return found;
    }
    if common::required("FACEGATE_REQUIRE_MODELS") {
        panic!("mosquitto or mosquitto_sub missing: scripts/setup.sh installs them");
    }
    eprintln!("SKIP: mosquitto not installed");
    None
}

/// A Mosquitto on 127.0.0.1:`port`, persistent (sessions survive its restart); stopped
/// (SIGTERM, so it saves them) when dropped or [`Broker::stop`]ped.
struct Broker {
    binary: PathBuf,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(binary: &Path, dir: &Path) -> Self {
        let port = common::service::free_port().port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nlog_dest none\nset_tcp_nodelay true\n",
                dir.display()
            ),
        )
        .unwrap();
        let mut broker = Self {
            binary: binary.into(),
            conf,
            port,
            child: None,
        };
        broker.restart();
        broker
    }

    fn restart(&mut self) {
        self.child = Some(
            Command::new(&self.binary)
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    fn sub(&self, args: &[&str]) -> Command {
        let mut command = Command::new("mosquitto_sub");
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-F",
                "%U %r %t %p",
            ])
            .args(args);
        command
    }

    fn publish(&self, topic: &str, payload: &str, retain: bool) {
        let mut command = Command::new("mosquitto_pub");
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-t",
            topic,
            "-m",
            payload,
        ]);
        if retain {
            command.arg("-r");
        }
        assert!(command.status().unwrap().success());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as `mosquitto_sub -F '%U %r %t %p'` prints it.
#[derive(Debug, Clone)]
struct Message {
    at_ms: u64,
    retained: bool,
    topic: String,
    payload: String,
}

fn parse(text: &str) -> Vec<Message> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, ' ');
            let at: f64 = parts.next()?.parse().ok()?;
            Some(Message {
                at_ms: (at * 1000.0) as u64,
                retained: parts.next()? == "1",
                topic: parts.next()?.to_string(),
                payload: parts.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// A `mosquitto_sub` in the background writing to a file; persistent session `id`.
struct Subscriber {
    child: Child,
    out: PathBuf,
}

impl Subscriber {
    fn start(broker: &Broker, out: &Path, id: &str, topics: &[&str]) -> Self {
        let out = out.to_path_buf();
        let mut command = broker.sub(&["-q", "1", "-c", "-i", id]);
        for topic in topics {
            command.args(["-t", topic]);
        }
        let child = command
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300)); // subscribed
        Self { child, out }
    }

    fn messages(&self) -> Vec<Message> {
        parse(&std::fs::read_to_string(&self.out).unwrap_or_default())
    }

    fn wait_for(&self, secs: u64, done: impl Fn(&[Message]) -> bool) -> Vec<Message> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.messages();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "not received in {secs} s: {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn grant(user: &str) -> DoorEvent {
    DoorEvent::Attempt {
        at_ms: now_ms(),
        door: "front".into(),
        user: Some(user.into()),
        outcome: Outcome::Granted(Via::Verified),
        online: true,
        similarity: Some(0.7),
        reason: String::new(),
        face_to_relay_ms: 70,
    }
}

/// The sink for door "front" (a contact wired) on `broker`, following `bus`.
fn sink(
    broker: &Broker,
    dir: &Path,
    bus: &EventBus,
) -> (tokio::task::JoinHandle<()>, Arc<Monitor>) {
    let config = MqttConfig {
        host: Some("127.0.0.1".into()),
        port: broker.port,
        keep_alive_secs: 5,
        ..MqttConfig::default()
    };
    assert!(config.problems().is_empty());
    let db = sled::open(dir.join("daemon.sled")).unwrap();
    let audit = AuditOutbox::open(&db, 1000).unwrap();
    let monitor = Arc::new(Monitor::new(Arc::new(SystemClock), 5_000));
    let mqtt = Mqtt::open(
        "front",
        &config,
        true,
        &db,
        audit,
        &monitor,
        Arc::new(SystemClock),
    )
    .unwrap();
    (mqtt.spawn(bus.subscribe()), monitor)
}

fn json(message: &Message) -> Value {
    serde_json::from_str(&message.payload).unwrap_or_else(|e| panic!("{e}: {message:?}"))
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_state_events_and_the_last_will_at_mosquitto() {
    let Some(binary) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&binary, dir.path());
    let live = Subscriber::start(
        &broker,
        &dir.path().join("live.txt"),
        "live",
        &["facegate/#", "homeassistant/#"],
    );
    let bus = EventBus::default();
    let (task, _monitor) = sink(&broker, dir.path(), &bus);
    tokio::task::block_in_place(|| {
        live.wait_for(10, |m| {
            m.iter().any(|m| m.topic.ends_with("/contact/config"))
        })
    });

    // What a Home Assistant that starts later finds: retained, field by field.
    let out = broker
        .sub(&[
            "--retained-only",
            "-W",
            "2",
            "-t",
            "homeassistant/#",
            "-t",
            "facegate/#",
        ])
        .output()
        .unwrap();
    let retained = parse(&String::from_utf8_lossy(&out.stdout));
    assert!(retained.iter().all(|m| m.retained));
    let doc = |topic: &str| -> Value {
        json(
            retained
                .iter()
                .find(|m| m.topic == topic)
                .unwrap_or_else(|| panic!("no retained {topic} in {retained:#?}")),
        )
    };
    let availability = retained
        .iter()
        .find(|m| m.topic == "facegate/front/availability")
        .unwrap();
    assert_eq!(availability.payload, "online");
    assert_eq!(doc("facegate/front/state")["lock"], "locked");
    let lock = doc("homeassistant/binary_sensor/front/lock/config");
    assert_eq!(lock["device_class"], "lock");
    assert_eq!(lock["state_topic"], "facegate/front/state");
    assert_eq!(lock["value_template"], "{{ value_json.lock }}");
    assert_eq!(
        (lock["payload_on"].as_str(), lock["payload_off"].as_str()),
        (Some("unlocked"), Some("locked"))
    );
    assert_eq!(lock["unique_id"], "facegate_front_lock");
    assert_eq!(lock["availability_topic"], "facegate/front/availability");
    assert_eq!(lock["payload_available"], "online");
    assert_eq!(lock["payload_not_available"], "offline");
    assert_eq!(lock["device"]["identifiers"][0], "facegate_front");
    let event = doc("homeassistant/event/front/access/config");
    assert_eq!(event["state_topic"], "facegate/front/event");
    let types: Vec<&str> = event["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "granted",
        "denied",
        "forced",
        "held_open",
        "unlocked",
        "locked",
    ] {
        assert!(types.contains(&t), "{t} not in {types:?}");
    }
    let user = doc("homeassistant/sensor/front/last_user/config");
    assert_eq!(user["state_topic"], "facegate/front/state");
    let tag = doc("homeassistant/tag/front/face/config");
    assert_eq!(tag["topic"], "facegate/front/tag");
    assert_eq!(tag["device"]["identifiers"][0], "facegate_front");
    let contact = doc("homeassistant/binary_sensor/front/contact/config");
    assert_eq!(contact["device_class"], "door");
    // One device for every entity.
    for d in [&lock, &event, &user, &contact] {
        assert_eq!(d["device"], lock["device"]);
    }

    // A grant: an event, the lock's state, the last user, a tag scan — in order.
    let mut latencies = Vec::new();
    for i in 0..10 {
        let before = live.messages().len();
        let at = now_ms();
        bus.send(grant(&format!("user{i}@example.com")));
        bus.send(DoorEvent::Unlocked {
            at_ms: at,
            door: "front".into(),
            origin: UnlockOrigin::Grant,
            for_ms: 5000,
        });
        bus.send(DoorEvent::Locked {
            at_ms: now_ms(),
            door: "front".into(),
        });
        let got = tokio::task::block_in_place(|| {
            live.wait_for(10, |m| {
                m[before..]
                    .iter()
                    .filter(|m| m.topic == "facegate/front/event")
                    .count()
                    >= 3
            })
        });
        let events: Vec<Value> = got[before..]
            .iter()
            .filter(|m| m.topic == "facegate/front/event")
            .map(json)
            .collect();
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["granted", "unlocked", "locked"]);
        assert_eq!(events[0]["user"], format!("user{i}@example.com"));
        assert_eq!(events[0]["reason"], "verified");
        let first = got[before..]
            .iter()
            .find(|m| m.topic == "facegate/front/event")
            .unwrap();
        latencies.push(first.at_ms.saturating_sub(at));
    }
    let got = tokio::task::block_in_place(|| {
        live.wait_for(5, |m| {
            m.iter()
                .any(|m| m.topic == "facegate/front/tag" && m.payload == "user9@example.com")
        })
    });
    let states: Vec<Value> = got
        .iter()
        .filter(|m| m.topic == "facegate/front/state")
        .map(json)
        .collect();
    assert!(states.iter().any(|s| s["lock"] == "unlocked"), "{states:?}");
    assert_eq!(states.last().unwrap()["lock"], "locked");
    assert_eq!(states.last().unwrap()["last_user"], "user9@example.com");

    // Home Assistant restarts: discovery again.
    let configs = |m: &[Message]| {
        m.iter()
            .filter(|m| m.topic.ends_with("/lock/config"))
            .count()
    };
    let before = configs(&live.messages());
    broker.publish("homeassistant/status", "online", false);
    tokio::task::block_in_place(|| live.wait_for(5, |m| configs(m) > before));

    // The connection dies without a goodbye: the broker publishes the last will.
    task.abort();
    let got = tokio::task::block_in_place(|| {
        live.wait_for(15, |m| {
            m.iter()
                .any(|m| m.topic == "facegate/front/availability" && m.payload == "offline")
        })
    });
    assert!(
        got.iter()
            .any(|m| m.topic == "facegate/front/availability" && m.payload == "online")
    );
    println!(
        "mqtt: event -> message at mosquitto_sub on loopback, median {} ms (max {} ms) over {} grants",
        median(latencies.clone()),
        latencies.iter().max().unwrap(),
        latencies.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_nothing_and_keeps_the_order() {
    let Some(binary) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&binary, dir.path());
    // A persistent QoS 1 session: the broker keeps what arrives while the client is away.
    let live = Subscriber::start(
        &broker,
        &dir.path().join("before.txt"),
        "outage",
        &["facegate/front/event"],
    );
    let bus = EventBus::default();
    let (_task, monitor) = sink(&broker, dir.path(), &bus);
    bus.send(grant("before@example.com"));
    tokio::task::block_in_place(|| live.wait_for(10, |m| !m.is_empty()));

    broker.stop();
    let sent: Vec<u64> = (0..20u64).map(|i| now_ms() * 100 + i).collect();
    for (i, _) in sent.iter().enumerate() {
        bus.send(grant(&format!("during{i}@example.com")));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = r#"facegate_sink_queued{sink="mqtt",target="#;
    let metrics = monitor.render_metrics();
    let depth: f64 = metrics
        .lines()
        .find(|l| l.starts_with(queued))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert_eq!(depth, 20.0, "queued while the broker is down:\n{metrics}");
    tokio::time::sleep(Duration::from_secs(2)).await; // down a while
    broker.restart();
    // The same session again: what the broker kept for it while it was away arrives now.
    drop(live);
    let live = Subscriber::start(
        &broker,
        &dir.path().join("after.txt"),
        "outage",
        &["facegate/front/event"],
    );

    let users = |m: &[Message]| -> Vec<String> {
        let mut seen = Vec::new();
        for user in m
            .iter()
            .map(|m| json(m)["user"].as_str().unwrap().to_string())
        {
            if !seen.contains(&user) {
                seen.push(user); // at-least-once: the first time each arrived
            }
        }
        seen
    };
    let got = tokio::task::block_in_place(|| live.wait_for(15, |m| users(m).len() >= 20));
    let expected: Vec<String> = (0..20).map(|i| format!("during{i}@example.com")).collect();
    assert_eq!(users(&got), expected, "every event, in order");
    println!(
        "mqtt outage: 20 events queued while the broker was down, {} arrived after it returned, lost {}",
        users(&got).len(),
        20 - users(&got).len()
    );
}

#[test]
fn a_grant_at_the_replay_camera_shows_up_as_an_event_and_a_lock_state() {
    let (Some(faces), Some(models)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let Some(binary) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&binary, dir.path());
    let live = Subscriber::start(&broker, &dir.path().join("run.txt"), "run", &["facegate/#"]);
    let person = &common::people(&faces, 1)[0];
    let replay = dir.path().join("frames");
    std::fs::create_dir(&replay).unwrap();
    std::fs::copy(common::photo(&faces, person, 2), replay.join("face.jpg")).unwrap();
    std::fs::write(
        replay.join("script.txt"),
        "- 10 100\nface.jpg 80 100 live\n- 600 100\n",
    )
    .unwrap();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[vision]\nmodel_dir = {:?}\n[camera]\nkind = \"replay\"\n\
             replay_dir = {:?}\n[relay]\nstate_file = {:?}\n[daemon]\nunlock_ms = 500\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {}\n",
            dir.path().join("data"),
            models,
            replay,
            dir.path().join("relay-state"),
            broker.port,
        ),
    )
    .unwrap();
    common::enroll_with_cli(
        &config,
        "ana@example.com",
        &common::photo(&faces, person, 1),
        "staff",
    );
    let _door = common::service::Running(
        Command::new(env!("CARGO_BIN_EXE_facegate"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .spawn()
            .unwrap(),
    );
    let got = live.wait_for(60, |m| {
        m.iter().any(|m| {
            m.topic == "facegate/front/state"
                && json(m)["lock"] == "locked"
                && json(m)["last_user"] == "ana@example.com"
        }) && m
            .iter()
            .any(|m| m.topic == "facegate/front/event" && json(m)["event_type"] == "locked")
    });
    let grant = got
        .iter()
        .find(|m| m.topic == "facegate/front/event" && json(m)["event_type"] == "granted")
        .expect("the grant as an event");
    assert_eq!(json(grant)["user"], "ana@example.com");
    let states: Vec<Value> = got
        .iter()
        .filter(|m| m.topic == "facegate/front/state")
        .map(json)
        .collect();
    assert!(states.iter().any(|s| s["lock"] == "unlocked"), "{states:?}");
    assert!(
        got.iter()
            .any(|m| m.topic == "facegate/front/tag" && m.payload == "ana@example.com")
    );
    println!(
        "mqtt facegate run: grant -> MQTT event at mosquitto_sub {} ms",
        grant
            .at_ms
            .saturating_sub(json(grant)["time_ms"].as_u64().unwrap())
    );
}

#[test]
fn doctor_says_whether_the_broker_accepts_the_connection() {
    let Some(binary) = mosquitto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&binary, dir.path());
    let doctor = |port: u16| -> (String, String) {
        let config = dir.path().join(format!("facegate-{port}.toml"));
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[camera]\nkind = \"replay\"\nreplay_dir = {:?}\n\
                 [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n",
                dir.path().join("data"),
                dir.path(),
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_facegate"))
            .arg("--config")
            .arg(&config)
            .args(["doctor", "--json", "--camera-timeout", "1"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let line = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "mqtt")
            .unwrap_or_else(|| panic!("no mqtt line in {report}"))
            .clone();
        (
            line["verdict"].as_str().unwrap().into(),
            line["detail"].as_str().unwrap().into(),
        )
    };
    let (verdict, detail) = doctor(broker.port);
    assert_eq!(verdict, "ok", "{detail}");
    assert!(detail.contains("accepted"), "{detail}");
    let closed = common::service::free_port().port();
    assert_eq!(doctor(closed).0, "fail");
}
