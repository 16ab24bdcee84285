//! Live figures of a boot's devices, as JSON for `sideband ctl stats` and as the progress line
//! `sideband run` prints while the DSP streams.

use std::time::Instant;

use serde_json::{json, Value};

use super::usb::RunningUsb;

/// The figures `stats` answers: elapsed time, the DSP's stream (TDs queued and completed,
/// missed service, underruns, TDs queued ahead), the headset (intervals served and missed,
/// packets, bytes), the xHCI's interrupters and the capture; the GLINK edge and APR, when served.
pub(super) fn stats(
    usb: Option<&RunningUsb>,
    glink: Option<&super::glink::RunningGlink>,
    started: Instant,
) -> Value {
    let mut v = json!({ "elapsed_s": started.elapsed().as_secs_f64() });
    if let Some(g) = glink {
        let f = g.figures();
        v["glink"] = json!({
            "apr_up": f.apr_up,
            "doorbells": f.kicks,
            "apr_packets": f.apr_packets,
            "apr_core": f.apr.core,
            "apr_afe": f.apr.afe,
            "afe_starts": f.afe_starts,
            "afe_stops": f.afe_stops,
            // What the latest AFE-driven enable or disable came to.
            "afe_last": f.afe_outcomes.last().map(|o| match o {
                Ok(a) => a.chars().take(400).collect::<String>(),
                Err(e) => format!("FAILED: {}", e.chars().take(400).collect::<String>()),
            }),
            // The latest failed AFE-driven enable or disable, if any.
            "afe_failed": f.afe_failures().next_back()
                .map(|e| e.chars().take(160).collect::<String>()),
            "apr_unsupported": f.apr.unsupported,
            "apr_malformed": f.apr.malformed,
            "malformed": f.link.malformed,
        });
    }
    let Some(usb) = usb else {
        return v;
    };
    if let Some(slot) = crate::fatal::lock(&usb.engine, "engine") {
        v["stream"] = match slot.as_ref() {
            Some(run) => {
                let s = run.engine.stats();
                json!({
                    "active": !(run.engine.finished() || run.engine.is_stopped()),
                    "tds_queued": s.tds_queued,
                    "completed": s.completed,
                    "missed_service": s.missed_service,
                    "underruns": s.underruns,
                    "errors": s.errors,
                    "samples": s.samples,
                    "buffer_tds": run.engine.outstanding(),
                    "smmu_faults": s.smmu_faults,
                })
            }
            None => Value::Null,
        };
    }
    if let Some(h) = crate::fatal::lock(&usb.headset.0, "headset") {
        let p = h.function().recorder().stats();
        v["headset"] = json!({
            "streams": p.streams,
            "intervals_served": p.packets,
            "intervals_missed": p.missed_intervals,
            "packets": p.packets,
            "bytes": p.bytes,
            "frames": p.frames,
        });
    }
    if let Some(x) = crate::fatal::lock(&usb.xhci, "xHCI") {
        let c = &x.controller;
        let irqs: Vec<Value> = (0..c.config().max_interrupters)
            .filter_map(|n| c.interrupter_stats(n).map(|s| (n, s)))
            .filter(|(_, s)| s.events > 0 || s.interrupts > 0)
            .map(|(n, s)| json!({ "interrupter": n, "events": s.events, "interrupts": s.interrupts, "dropped": s.dropped }))
            .collect();
        v["xhci"] = json!({ "trbs": c.stats().trbs, "interrupters": irqs });
    }
    if let Some(cap) = crate::fatal::lock(&usb.capture, "capture") {
        if let Some(w) = cap.as_ref() {
            let c = w.counters();
            let load =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            v["capture"] = json!({
                "transfers": load(&c.transfers),
                "bytes": load(&c.bytes),
                "dropped": load(&c.dropped_queue) + load(&c.dropped_cap),
            });
        }
    }
    v
}

/// The progress line of a stream in progress, or `None` when the DSP streams nothing.
pub fn progress_line(stats: &Value) -> Option<String> {
    let s = stats.get("stream")?;
    if !s.get("active")?.as_bool()? {
        return None;
    }
    let h = &stats["headset"];
    Some(format!(
        "streaming {:6.1}s: {} intervals served, {} missed; {} TDs queued ahead; {} completed, {} missed service, {} underruns",
        stats["elapsed_s"].as_f64().unwrap_or(0.0),
        h["intervals_served"],
        h["intervals_missed"],
        s["buffer_tds"],
        s["completed"],
        s["missed_service"],
        s["underruns"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_only_while_streaming() {
        let idle = json!({ "elapsed_s": 1.0, "stream": null });
        assert_eq!(progress_line(&idle), None);
        let busy = json!({
            "elapsed_s": 2.5,
            "stream": { "active": true, "buffer_tds": 24, "completed": 100, "missed_service": 0, "underruns": 1 },
            "headset": { "intervals_served": 99, "intervals_missed": 2 },
        });
        assert_eq!(
            progress_line(&busy).unwrap(),
            "streaming    2.5s: 99 intervals served, 2 missed; 24 TDs queued ahead; 100 completed, 0 missed service, 1 underruns"
        );
    }
}
