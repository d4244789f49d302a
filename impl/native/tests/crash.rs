//! Crash test: kill -9 the server while 16 producers append; after a restart every
//! acknowledged append reads back byte-exact, nothing is duplicated, offsets strictly
//! increase, and every producer continues from its next seq.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{read_all, request, temp_dir, Server};

const PRODUCERS: usize = 16;
const PATH: &str = "/v1/stream/crash/log";

fn record(p: usize, seq: u64) -> String {
    format!("<p{p:02}s{seq:06}>")
}

#[derive(Default, Clone)]
struct ProducerLog {
    /// seq → Stream-Next-Offset of acknowledged appends.
    acked: Vec<(u64, String)>,
    /// The request in flight when the server died (seq), if any.
    in_flight: Option<u64>,
}

#[test]
fn acknowledged_appends_survive_kill_9() {
    let dir = temp_dir("crash");
    let mut server = Server::start(&dir, &["--durability", "fsync"]);
    let r = server.request("PUT", PATH, &[("Content-Type", "application/octet-stream")], b"").unwrap();
    assert_eq!(r.status, 201);

    let stop = Arc::new(AtomicBool::new(false));
    let logs = Arc::new(Mutex::new(vec![ProducerLog::default(); PRODUCERS]));
    let port = server.port;
    let threads: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (stop, logs) = (stop.clone(), logs.clone());
            std::thread::spawn(move || {
                let id = format!("producer-{p}");
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    logs.lock().unwrap()[p].in_flight = Some(seq);
                    let seq_s = seq.to_string();
                    let headers = [
                        ("Content-Type", "application/octet-stream"),
                        ("Producer-Id", id.as_str()),
                        ("Producer-Epoch", "0"),
                        ("Producer-Seq", seq_s.as_str()),
                    ];
                    match request(port, "POST", PATH, &headers, record(p, seq).as_bytes(), Duration::from_secs(10)) {
                        Ok(r) if r.status == 200 => {
                            let next = r.header("stream-next-offset").unwrap_or_default().to_owned();
                            let mut l = logs.lock().unwrap();
                            l[p].acked.push((seq, next));
                            l[p].in_flight = None;
                            seq += 1;
                        }
                        Ok(r) => panic!("producer {p} seq {seq}: unexpected status {}", r.status),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let logs = logs.lock().unwrap().clone();
    let total: usize = logs.iter().map(|l| l.acked.len()).sum();
    assert!(total > 50, "too few appends acknowledged before the crash: {total}");
    eprintln!("{total} appends acknowledged by {PRODUCERS} producers before kill -9");

    let server = Server::start(&dir, &["--durability", "fsync"]);
    let (data, offsets) = read_all(&server, PATH, "-1");
    assert!(offsets.windows(2).all(|w| w[0] < w[1] || offsets.len() == 1));

    // Parse the log back into records.
    let text = String::from_utf8(data.clone()).expect("records are ASCII");
    let records: Vec<&str> = text.split_inclusive('>').collect();
    assert_eq!(records.concat(), text, "log is a sequence of whole records");
    let mut seen: HashMap<(usize, u64), usize> = HashMap::new();
    let mut last_seq: Vec<Option<u64>> = vec![None; PRODUCERS];
    for r in &records {
        let p: usize = r[2..4].parse().unwrap();
        let seq: u64 = r[5..11].parse().unwrap();
        *seen.entry((p, seq)).or_default() += 1;
        assert_eq!(last_seq[p].map_or(0, |s| s + 1), seq, "producer {p} is gapless and in order");
        last_seq[p] = Some(seq);
    }
    assert!(seen.values().all(|n| *n == 1), "no record is duplicated");

    // Every acknowledged append is there, byte-exact, at the position its ack announced.
    for (p, log) in logs.iter().enumerate() {
        let mut prev = String::new();
        for (seq, next) in &log.acked {
            assert_eq!(seen.get(&(p, *seq)), Some(&1), "acked p{p} seq {seq} lost");
            assert!(*next > prev, "acked offsets strictly increase");
            let byte: usize = next.split('_').nth(1).unwrap().parse().unwrap();
            let rec = record(p, *seq);
            assert_eq!(&data[byte - rec.len()..byte], rec.as_bytes(), "record ends at its acked offset");
            prev = next.clone();
        }
    }

    // Each producer continues: retry the in-flight request (200 if lost, 204 if it had
    // committed), then the next seq is accepted.
    for (p, log) in logs.iter().enumerate() {
        let id = format!("producer-{p}");
        let mut next = log.acked.last().map_or(0, |(s, _)| s + 1);
        if let Some(seq) = log.in_flight {
            assert_eq!(seq, next);
            let seq_s = seq.to_string();
            let h = [
                ("Content-Type", "application/octet-stream"),
                ("Producer-Id", id.as_str()),
                ("Producer-Epoch", "0"),
                ("Producer-Seq", seq_s.as_str()),
            ];
            let r = server.request("POST", PATH, &h, record(p, seq).as_bytes()).unwrap();
            assert!(r.status == 200 || r.status == 204, "retry of in-flight p{p} seq {seq}: {}", r.status);
            next = seq + 1;
        }
        let seq_s = next.to_string();
        let h = [
            ("Content-Type", "application/octet-stream"),
            ("Producer-Id", id.as_str()),
            ("Producer-Epoch", "0"),
            ("Producer-Seq", seq_s.as_str()),
        ];
        let r = server.request("POST", PATH, &h, record(p, next).as_bytes()).unwrap();
        assert_eq!(r.status, 200, "p{p} continues at seq {next}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
