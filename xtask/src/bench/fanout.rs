//! `cargo xtask bench fanout [--hosts native,worker,at:PORT] [--subscribers 10,250,1000]
//! [--readers sse,long-poll] [--publishes N]`
//!
//! Publish → seen-by-all latency of estuary fan-out: one source, N
//! subscribed estuaries, each followed by its own live reader — an SSE
//! connection, or a long-poll loop (one new request per message). A
//! publish's latency is the time from sending it to the moment the last of
//! the N readers has it. Reported: p50 / p95 / max over the publishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hyper::Method;

use super::client::{encode_query, Conn};
use crate::servers::{self, ServerKind, StartOpts};
use crate::util::{self, Args};

/// Arrival bookkeeping of one publish: readers that have it, and when the last one got it.
struct Trial {
    seen: usize,
    last: Option<Instant>,
}

pub fn cli(mut a: Args) -> Result<()> {
    let hosts = a.opt("--hosts")?.unwrap_or_else(|| "native,worker".into());
    let subscribers: Vec<usize> = a
        .opt("--subscribers")?
        .unwrap_or_else(|| "10,250,1000".into())
        .split(',')
        .map(|s| s.parse().context("--subscribers"))
        .collect::<Result<_>>()?;
    let publishes: usize = a.opt("--publishes")?.map(|s| s.parse()).transpose()?.unwrap_or(20);
    let readers: Vec<Reader> = a
        .opt("--readers")?
        .unwrap_or_else(|| "sse,long-poll".into())
        .split(',')
        .map(|r| match r {
            "sse" => Ok(Reader::Sse),
            "long-poll" => Ok(Reader::LongPoll),
            other => Err(anyhow::anyhow!("unknown reader `{other}` (sse, long-poll)")),
        })
        .collect::<Result<_>>()?;
    a.finish()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut rows = Vec::new();
    let mut runs = 0usize;
    for host in hosts.split(',').filter(|h| !h.is_empty()) {
        let (port, mut stop): (u16, Box<dyn FnMut()>) = match host {
            "native" => {
                let prepared = servers::prepare(ServerKind::Native)?;
                let mut server = servers::start(&prepared, &StartOpts { log_to_file: true, ..Default::default() })?;
                (server.port, Box::new(move || server.stop()))
            }
            "worker" => {
                let port = util::free_port()?;
                let state = util::TempDir::new("ds-bench-fanout")?;
                let mut dev = crate::worker::start(&crate::worker::DevOpts {
                    port,
                    persist_to: Some(state.path().to_path_buf()),
                    vars: vec![("AUTH_MODE".into(), "none".into())],
                    log: Some(state.path().join("wrangler.log")),
                })?;
                (port, Box::new(move || {
                    dev.stop();
                    let _ = &state;
                }))
            }
            // A server already running (e.g. under a profiler): `at:PORT`.
            other => match other.strip_prefix("at:").map(str::parse::<u16>) {
                Some(Ok(port)) => (port, Box::new(|| ())),
                _ => bail!("unknown host `{other}` (native, worker, at:PORT)"),
            },
        };
        for &reader in &readers {
            for &n in &subscribers {
                eprint!("fanout {host} {n} subscribers, {} readers ... ", reader.name());
                runs += 1;
                let tag = format!("{}{n}x{}r{runs}", host.replace(':', "-"), std::process::id());
                let result = rt.block_on(run(port, n, publishes, reader, &tag));
                match result {
                    Ok(latencies) => {
                        let (p50, p95, max) = summary(latencies.clone());
                        eprintln!("p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms");
                        rows.push((host.to_owned(), reader.name(), n, p50, p95, max, latencies.len()));
                    }
                    Err(e) => eprintln!("FAILED: {e:#}"),
                }
            }
        }
        stop();
    }
    println!("\n| host | readers | subscribers | publishes | p50 ms | p95 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|");
    for (host, reader, n, p50, p95, max, count) in rows {
        println!("| {host} | {reader} | {n} | {count} | {p50:.1} | {p95:.1} | {max:.1} |");
    }
    Ok(())
}

/// How each subscriber follows its estuary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    /// One SSE response per reader (reconnecting when the server ends it).
    Sse,
    /// A long-poll loop: one request per message.
    LongPoll,
}

impl Reader {
    fn name(self) -> &'static str {
        match self {
            Reader::Sse => "sse",
            Reader::LongPoll => "long-poll",
        }
    }
}

/// Records that a reader received `count` more publishes (in order).
fn arrived(trials: &Mutex<Vec<Trial>>, received: &mut usize, count: usize, at: Instant) -> Result<()> {
    let mut t = trials.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let total = t.len();
    for k in *received..(*received + count).min(total) {
        t[k].seen += 1;
        t[k].last = Some(at);
    }
    *received += count;
    Ok(())
}

/// Follows `path` over SSE from `offset` until `publishes` arrived or `stop`.
async fn follow_sse(
    addr: std::net::SocketAddr,
    path: &str,
    mut offset: String,
    publishes: usize,
    trials: &Mutex<Vec<Trial>>,
    stop: &AtomicBool,
) -> Result<()> {
    use http_body_util::BodyExt;
    let mut received = 0usize;
    while !stop.load(Ordering::Relaxed) && received < publishes {
        let mut conn = Conn::connect(addr).await?;
        let url = format!("{path}?offset={}&live=sse", encode_query(&offset));
        let resp = conn.send(Method::GET, &url, &[("accept", "text/event-stream")], Bytes::new()).await?;
        if !resp.status().is_success() {
            bail!("SSE GET {path}: {}", resp.status());
        }
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            let at = Instant::now();
            buf.extend_from_slice(&data);
            // Whole events only (separated by a blank line).
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event);
                let kind = text.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim).unwrap_or("data");
                let data: String = text.lines().filter_map(|l| l.strip_prefix("data:")).collect::<Vec<_>>().join("\n");
                if kind == "control" {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                        if let Some(o) = v.get("streamNextOffset").and_then(|o| o.as_str()) {
                            offset = o.to_owned();
                        }
                    }
                } else {
                    let count = data.bytes().filter(|b| *b == b';').count();
                    if count > 0 {
                        arrived(trials, &mut received, count, at)?;
                    }
                }
            }
            if received >= publishes || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    (at(0.5), at(0.95), v.last().copied().unwrap_or(f64::NAN))
}

async fn run(port: u16, subscribers: usize, publishes: usize, reader: Reader, tag: &str) -> Result<Vec<f64>> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut admin = Conn::connect(addr).await?;
    let source = format!("/v1/stream/bench/{tag}-src");
    admin.create_stream(&source, "text/plain").await?;
    for i in 0..subscribers {
        let body = Bytes::from(format!(r#"{{"estuaryId":"{tag}-e{i}"}}"#));
        let r = admin
            .call(Method::POST, &format!("/v1/estuary/subscribe/bench/{tag}-src"), &[("content-type", "application/json")], body)
            .await?;
        if r.status != 200 {
            bail!("subscribe {i}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
    }
    let trials: Arc<Mutex<Vec<Trial>>> = Arc::new(Mutex::new((0..publishes).map(|_| Trial { seen: 0, last: None }).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..subscribers {
        let (trials, stop, ready) = (trials.clone(), stop.clone(), ready.clone());
        let path = format!("/v1/stream/bench/{tag}-e{i}");
        readers.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            // Follow from the estuary's tail as it is now (an explicit
            // offset: a publish racing a reader's first poll is still seen).
            let head = conn.call(Method::HEAD, &path, &[], Bytes::new()).await?;
            let mut offset = head.header("stream-next-offset").context("HEAD without Stream-Next-Offset")?.to_owned();
            ready.fetch_add(1, Ordering::Relaxed);
            if reader == Reader::Sse {
                return follow_sse(addr, &path, offset, publishes, &trials, &stop).await;
            }
            let mut received = 0usize;
            while !stop.load(Ordering::Relaxed) && received < publishes {
                let url = format!("{path}?offset={}&live=long-poll", encode_query(&offset));
                let r = conn.call(Method::GET, &url, &[], Bytes::new()).await?;
                let arrived = Instant::now();
                if let Some(next) = r.header("stream-next-offset") {
                    offset = next.to_owned();
                }
                if r.status == 200 {
                    let count = r.body.iter().filter(|b| **b == b';').count();
                    self::arrived(&trials, &mut received, count, arrived)?;
                }
            }
            anyhow::Ok(())
        }));
    }
    // Every reader knows its starting offset; let them park their first long-polls.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < subscribers {
        if Instant::now() > deadline {
            bail!("readers did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200 + subscribers as u64 / 4)).await;
    let mut latencies = Vec::new();
    for k in 0..publishes {
        let started = Instant::now();
        let r = admin.append(&source, "text/plain", Bytes::from(format!("p{k};"))).await?;
        if !r.status.is_success() {
            bail!("publish {k}: {}", r.status);
        }
        let deadline = started + Duration::from_secs(60);
        loop {
            let done = {
                let t = trials.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                (t[k].seen >= subscribers).then(|| t[k].last)
            };
            if let Some(Some(last)) = done {
                latencies.push(last.duration_since(started).as_secs_f64() * 1e3);
                break;
            }
            if Instant::now() > deadline {
                let seen = trials.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[k].seen;
                // Tell a lost delivery from a lost wake-up: what do the estuaries hold?
                let mut holding = 0;
                for i in 0..subscribers {
                    let r = admin.call(Method::GET, &format!("/v1/stream/bench/{tag}-e{i}?offset=-1"), &[], Bytes::new()).await?;
                    if r.body.windows(format!("p{k};").len()).any(|w| w == format!("p{k};").as_bytes()) {
                        holding += 1;
                    }
                }
                bail!("publish {k} seen by {seen} of {subscribers} readers within 60 s; {holding} estuaries hold it");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.abort();
    }
    Ok(latencies)
}
