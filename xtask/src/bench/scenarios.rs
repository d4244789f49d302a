//! Bench scenarios. Each runs against one server and returns its metrics.
//! Latencies are closed-loop (each connection waits for its reply before the
//! next request) and recorded in microseconds in HDR histograms.

use super::client::{encode_query, Conn};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::Method;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const APPEND_BYTES: usize = 100;
const OCTET: &str = "application/octet-stream";
const TEXT: &str = "text/plain";

/// One measured value of a scenario run.
#[derive(Clone, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    /// true: bigger is better (throughput); false: smaller is better (latency).
    pub higher_is_better: bool,
}

fn m(name: &'static str, value: f64, higher_is_better: bool) -> Metric {
    Metric { name, value, higher_is_better }
}

pub struct Ctx {
    pub addr: SocketAddr,
    /// Unique path prefix for this run, e.g. `/v1/stream/bench-123-seq-r0`.
    pub prefix: String,
    pub duration: Duration,
    pub quick: bool,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 120_000_000)
}

fn payload(fill: u8) -> Bytes {
    Bytes::from(vec![fill; APPEND_BYTES])
}

fn latency_metrics(h: &Histogram<u64>, out: &mut Vec<Metric>) {
    out.push(m("p50 µs", h.value_at_quantile(0.50) as f64, false));
    out.push(m("p99 µs", h.value_at_quantile(0.99) as f64, false));
}

/// `conns` keep-alive connections append 100-byte bodies round-robin over
/// `streams` streams for the run's duration (first 10 % is warm-up).
pub async fn appends(ctx: &Ctx, conns: usize, streams: usize) -> Result<Vec<Metric>> {
    let paths: Vec<String> = (0..streams).map(|i| format!("{}/s{i}", ctx.prefix)).collect();
    let mut setup = Conn::connect(ctx.addr).await?;
    for p in &paths {
        setup.create_stream(p, OCTET).await?;
    }
    let paths = Arc::new(paths);
    let warm = (ctx.duration / 10).max(Duration::from_millis(200));
    let start = Instant::now();
    let measure_from = start + warm;
    let deadline = measure_from + ctx.duration;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let paths = paths.clone();
        let errors = errors.clone();
        let addr = ctx.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut h = hist();
            let mut n = 0u64;
            let body = payload(b'a' + (c % 26) as u8);
            let mut j = 0usize;
            loop {
                let path = &paths[(c + j * conns) % paths.len()];
                j += 1;
                let t0 = Instant::now();
                if t0 >= deadline {
                    break;
                }
                let r = conn.append(path, OCTET, body.clone()).await?;
                let t1 = Instant::now();
                if !r.status.is_success() {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("append {path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
                    }
                    continue;
                }
                if t0 >= measure_from {
                    h.record(us(t1 - t0))?;
                    n += 1;
                }
            }
            anyhow::Ok((h, n))
        }));
    }
    let mut h = hist();
    let mut n = 0;
    for t in tasks {
        let (th, tn) = t.await??;
        h.add(th)?;
        n += tn;
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from).max(Duration::from_millis(1));
    let mut out = vec![m("appends/s", n as f64 / elapsed.as_secs_f64(), true)];
    latency_metrics(&h, &mut out);
    let e = errors.load(Ordering::Relaxed);
    if e > 0 {
        out.push(m("errors", e as f64, false));
    }
    Ok(out)
}

/// Fill one stream with 64 MiB (1 MiB appends), then read it from the start
/// following `Stream-Next-Offset` until `Stream-Up-To-Date`.
pub async fn catchup(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mib: usize = if ctx.quick { 16 } else { 64 };
    let path = format!("{}/big", ctx.prefix);
    let mut conn = Conn::connect(ctx.addr).await?;
    conn.create_stream(&path, OCTET).await?;
    let chunk = Bytes::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let t = Instant::now();
    for _ in 0..mib {
        let r = conn.append(&path, OCTET, chunk.clone()).await?;
        if !r.status.is_success() {
            bail!("1 MiB append: {}", r.status);
        }
    }
    let write_s = t.elapsed().as_secs_f64();

    let mut reader = Conn::connect(ctx.addr).await?;
    let t = Instant::now();
    let mut offset = "-1".to_string();
    let mut total = 0usize;
    let mut requests = 0;
    loop {
        let r = reader.call(Method::GET, &format!("{path}?offset={}", encode_query(&offset)), &[], Bytes::new()).await?;
        requests += 1;
        if !r.status.is_success() {
            bail!("catch-up GET: {}", r.status);
        }
        total += r.body.len();
        let next = r.header("stream-next-offset").context("no Stream-Next-Offset")?.to_string();
        let done = r.header("stream-up-to-date").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if done || (r.body.is_empty() && next == offset) || requests > 100_000 {
            break;
        }
        offset = next;
    }
    let read_s = t.elapsed().as_secs_f64();
    if total != mib << 20 {
        bail!("catch-up read {total} bytes, expected {}", mib << 20);
    }
    Ok(vec![
        m("read MB/s", total as f64 / 1e6 / read_s, true),
        m("read requests", requests as f64, false),
        m("1MiB-append MB/s", (mib << 20) as f64 / 1e6 / write_s, true),
    ])
}

/// `subs` SSE subscribers on one text stream; one writer appends at `rate`/s
/// bodies carrying their send time; latency = receive time - send time.
pub async fn sse(ctx: &Ctx, subs: usize, rate: u32) -> Result<Vec<Metric>> {
    let path = format!("{}/sse", ctx.prefix);
    let mut writer = Conn::connect(ctx.addr).await?;
    writer.create_stream(&path, TEXT).await?;
    let base = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let (addr, path, ready, mut stop) = (ctx.addr, path.clone(), ready.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = hist();
            let mut got = 0u64;
            let mut offset = "-1".to_string();
            let mut signalled = false;
            let mut reconnects = 0u64;
            'outer: loop {
                let mut conn = Conn::connect(addr).await?;
                let url = format!("{path}?offset={}&live=sse", encode_query(&offset));
                let resp = conn.send(Method::GET, &url, &[("accept", "text/event-stream")], Bytes::new()).await?;
                if !resp.status().is_success() {
                    bail!("SSE GET: {}", resp.status());
                }
                if !signalled {
                    ready.add_permits(1);
                    signalled = true;
                }
                let mut body = resp.into_body();
                let mut buf: Vec<u8> = Vec::new();
                loop {
                    let frame = tokio::select! {
                        f = body.frame() => f,
                        _ = stop.changed() => break 'outer,
                    };
                    let Some(frame) = frame else { break };
                    let frame = frame?;
                    let Ok(data) = frame.into_data() else { continue };
                    let now = base.elapsed();
                    buf.extend_from_slice(&data);
                    // Process complete lines only.
                    let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else { continue };
                    let text = String::from_utf8_lossy(&buf[..last_nl]).into_owned();
                    buf.drain(..=last_nl);
                    for line in text.lines() {
                        let Some(data) = line.strip_prefix("data:") else { continue };
                        let mut rest = data;
                        while let Some(i) = rest.find("@@") {
                            let after = &rest[i + 2..];
                            let Some(j) = after.find("@@") else { break };
                            if let Ok(ns) = after[..j].parse::<u64>() {
                                let sent = Duration::from_nanos(ns);
                                h.record(us(now.saturating_sub(sent)))?;
                                got += 1;
                            }
                            rest = &after[j + 2..];
                        }
                        if data.trim_start().starts_with('{') {
                            if let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) {
                                if let Some(o) = v.get("streamNextOffset").and_then(|o| o.as_str()) {
                                    offset = o.to_string();
                                }
                            }
                        }
                    }
                }
                // Server closed the SSE response: reconnect from the last offset.
                reconnects += 1;
                if *stop.borrow() {
                    break;
                }
            }
            anyhow::Ok((h, got, reconnects))
        }));
    }
    // Wait for every subscriber to be connected, then let them settle.
    let _ = tokio::time::timeout(Duration::from_secs(30), ready.acquire_many(subs as u32))
        .await
        .context("SSE subscribers did not all connect within 30 s")??;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + ctx.duration;
    let mut sent = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let ns = base.elapsed().as_nanos();
        let mut body = format!("@@{ns}@@").into_bytes();
        body.resize(APPEND_BYTES, b'x');
        let r = writer.append(&path, TEXT, Bytes::from(body)).await?;
        if !r.status.is_success() {
            bail!("SSE writer append: {}", r.status);
        }
        sent += 1;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop_tx.send(true);
    let mut h = hist();
    let mut got = 0;
    let mut reconnects = 0;
    for t in tasks {
        let (th, tg, tr) = t.await??;
        h.add(th)?;
        got += tg;
        reconnects += tr;
    }
    let mut out = Vec::new();
    latency_metrics(&h, &mut out);
    out.push(m("delivered %", 100.0 * got as f64 / (sent * subs as u64).max(1) as f64, true));
    out.push(m("reconnects", reconnects as f64, false));
    Ok(out)
}

/// One long-poll reader parked at the tail; a writer appends 20 ms later;
/// latency = reader's reply time - writer's send time.
pub async fn long_poll(ctx: &Ctx) -> Result<Vec<Metric>> {
    let path = format!("{}/lp", ctx.prefix);
    let mut writer = Conn::connect(ctx.addr).await?;
    let r = writer.create_stream(&path, OCTET).await?;
    let mut tail = r.header("stream-next-offset").context("PUT gave no Stream-Next-Offset")?.to_string();
    let mut reader = Some(Conn::connect(ctx.addr).await?);
    let mut h = hist();
    let mut timeouts = 0u64;
    let end = Instant::now() + ctx.duration;
    let body = payload(b'l');
    while Instant::now() < end {
        let mut rconn = reader.take().expect("reader connection");
        let url = format!("{path}?offset={}&live=long-poll", encode_query(&tail));
        let task = tokio::spawn(async move {
            let r = rconn.call(Method::GET, &url, &[], Bytes::new()).await;
            (rconn, r, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t0 = Instant::now();
        let w = writer.append(&path, OCTET, body.clone()).await?;
        if !w.status.is_success() {
            bail!("long-poll writer append: {}", w.status);
        }
        tail = w.header("stream-next-offset").context("POST gave no Stream-Next-Offset")?.to_string();
        let (rconn, r, t1) = task.await?;
        reader = Some(rconn);
        let r = r?;
        match r.status.as_u16() {
            200 if !r.body.is_empty() => h.record(us(t1.saturating_duration_since(t0)))?,
            204 => timeouts += 1,
            s => bail!("long-poll GET: {s}"),
        }
    }
    let mut out = Vec::new();
    latency_metrics(&h, &mut out);
    out.push(m("wake-ups", h.len() as f64, true));
    if timeouts > 0 {
        out.push(m("timeouts", timeouts as f64, false));
    }
    Ok(out)
}
