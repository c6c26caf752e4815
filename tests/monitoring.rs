//! `facegate run` with `[monitoring] listen` set: /healthz and /metrics scraped over 127.0.0.1
//! while an enrolled person walks up to the replay camera and is let in.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::service::{Running, free_port, get, request, sample, total};

#[test]
fn health_and_metrics_follow_a_granted_sign_in() {
    let (Some(faces), Some(models)) = (common::faces_dir(), common::model_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let person = &common::people(&faces, 1)[0];
    let replay = dir.path().join("frames");
    std::fs::create_dir(&replay).unwrap();
    std::fs::copy(common::photo(&faces, person, 2), replay.join("face.jpg")).unwrap();
    // Nobody for a second (the scraper sees the daemon ready), then the person, moving.
    std::fs::write(
        replay.join("script.txt"),
        "- 10 100\nface.jpg 80 100 live\n- 600 100\n",
    )
    .unwrap();
    let addr = free_port();
    let config = dir.path().join("facegate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[vision]\nmodel_dir = {:?}\n[camera]\nkind = \"replay\"\n\
             replay_dir = {:?}\n[relay]\nstate_file = {:?}\n[monitoring]\nlisten = \"{addr}\"\n",
            dir.path().join("data"),
            models,
            replay,
            dir.path().join("relay-state"),
        ),
    )
    .unwrap();
    let photo = common::photo(&faces, person, 1);
    common::enroll_with_cli(&config, "ana@example.com", &photo, "staff");

    let _daemon = Running(
        Command::new(env!("CARGO_BIN_EXE_facegate"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .spawn()
            .unwrap(),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        assert!(Instant::now() < deadline, "/healthz never answered 200");
        if let Some((200, body)) = get(addr, "/healthz") {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health["ready"], true);
    assert_eq!(health["camera_ok"], true);
    assert_eq!(health["backend"], "online");
    assert!(health["last_frame_age_ms"].as_u64().unwrap() <= 5_000);

    let granted = r#"facegate_attempts_total{decision="granted",reason="verified"}"#;
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "no granted attempt in /metrics within 60 s"
        );
        let (status, body) = get(addr, "/metrics").expect("/metrics answers");
        assert_eq!(status, 200);
        if sample(&body, granted).is_some() {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Counts, not instants: on a slow machine a first look may be refused and retried, so
    // the test checks that the counters agree with each other rather than that each is 1.
    let attempts = total(&metrics, "facegate_attempts_total");
    let granted_count = sample(&metrics, granted).unwrap();
    assert!(
        (1.0..=attempts).contains(&granted_count),
        "{granted_count} granted of {attempts}"
    );
    assert!(
        attempts <= 3.0,
        "{attempts} attempts for one person walking up once"
    );
    assert_eq!(
        sample(&metrics, "facegate_face_to_relay_seconds_count"),
        Some(attempts),
        "one face-to-relay time per attempt"
    );
    assert!(
        sample(
            &metrics,
            r#"facegate_inference_seconds_count{stage="detect"}"#
        )
        .unwrap()
            >= 5.0,
        "liveness needs several detected frames"
    );
    // Every tracked frame is embedded (a track is one person), so: at least one embedding
    // per attempt, and never more than the faces detected.
    let embedded = sample(
        &metrics,
        r#"facegate_inference_seconds_count{stage="embed"}"#,
    )
    .unwrap();
    let detected = sample(
        &metrics,
        r#"facegate_inference_seconds_count{stage="detect"}"#,
    )
    .unwrap();
    assert!(
        (attempts..=detected).contains(&embedded),
        "{embedded} embeddings for {attempts} attempts and {detected} detections"
    );
    assert!(sample(&metrics, "facegate_camera_frames_total").unwrap() >= 10.0);
    assert_eq!(
        sample(&metrics, "facegate_camera_reconnects_total"),
        Some(0.0)
    );
    assert_eq!(sample(&metrics, "facegate_offline"), Some(0.0));
    assert_eq!(sample(&metrics, "facegate_door_open"), Some(-1.0));
    assert!(sample(&metrics, "facegate_audit_outbox_depth").is_some());
    assert!(sample(&metrics, "facegate_relay_unlocked").is_some());
    assert!(metrics.contains("# TYPE facegate_face_to_relay_seconds histogram"));

    let (status, _) = get(addr, "/nothing").unwrap();
    assert_eq!(status, 404);
}

/// The listener on its own: idle clients neither starve a scrape beyond the connection limit
/// nor stay connected past the request deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_bounded_and_cut_off() {
    use facegate::monitor::{Monitor, http};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let clock = Arc::new(facegate::clock::ManualClock::at(0));
    let monitor = Arc::new(Monitor::new(clock, 5_000));
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve(listener, monitor));

    // Eight clients that connect and say nothing hold every slot...
    let connected = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a ninth is closed at once, without an answer.
    let mut refused = tokio::net::TcpStream::connect(addr).await.unwrap();
    refused
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), refused.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "over the limit: {read:?}"
    );

    // The idle ones are cut off at the request deadline (5 s after each connected), freeing
    // their slots: not before (the deadline is not shorter), and not much after (a window
    // wide enough for a busy machine).
    let mut closed_after = Vec::new();
    for stream in &mut idle {
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "an idle client is still connected 15 s on: {read:?}"
        );
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
            "an idle client got: {}",
            String::from_utf8_lossy(&answer)
        );
        closed_after.push(connected.elapsed());
    }
    let (first, last) = (closed_after[0], closed_after[closed_after.len() - 1]);
    assert!(
        first >= Duration::from_millis(4_900),
        "an idle client was cut off after {first:?}, before the 5 s deadline"
    );
    assert!(
        last < Duration::from_secs(12),
        "the idle clients were cut off only after {last:?}"
    );
    let (status, body) = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .unwrap()
        .expect("a scrape is served once the idle clients are gone");
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE facegate_offline gauge"), "{body}");
}

/// The listener serves reads only: no method but GET (and HEAD) is accepted on any path, no
/// path but the two reports exists, and whatever is sent, the door's state is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_is_read_only_and_off_unless_configured() {
    use facegate::door::LockState;
    use facegate::monitor::{Monitor, MonitoringConfig, http};
    use std::sync::Arc;

    assert_eq!(
        MonitoringConfig::default().listen,
        None,
        "no listener unless monitoring.listen is set"
    );
    let monitor = Arc::new(Monitor::new(
        Arc::new(facegate::clock::ManualClock::at(0)),
        5_000,
    ));
    monitor.observe(&facegate::events::DoorEvent::Locked {
        at_ms: 0,
        door: "front".into(),
    });
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve(listener, monitor.clone()));
    let before = monitor.render_metrics();
    let attempts = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            for path in ["/metrics", "/healthz", "/unlock", "/relay", "/"] {
                seen.push((method, path, request(addr, method, path)));
            }
        }
        for path in [
            "/unlock",
            "/relay",
            "/door/open",
            "/admin",
            "/metrics/../unlock",
        ] {
            seen.push(("GET", path, request(addr, "GET", path)));
        }
        seen
    })
    .await
    .unwrap();
    for (method, path, answer) in attempts {
        let (status, _) = answer.unwrap_or_else(|| panic!("{method} {path}: no answer"));
        let expected = if method == "GET" { 404 } else { 405 };
        assert_eq!(status, expected, "{method} {path}");
    }
    assert_eq!(monitor.health().relay, LockState::Locked);
    assert_eq!(
        monitor.render_metrics(),
        before,
        "requests to the listener changed what it reports"
    );
}
