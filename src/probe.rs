//! `probeWakeups()`: the engine's wake-up probe ([`udpcom_engine::probe_wakeups`]) as a
//! Promise. It runs on a worker-pool thread, which only waits: the engine measures on a thread
//! of its own, so the pool thread's scheduling is never changed.

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use udpcom_engine::{integer, CpuLoss, Error, WakeLateness, WakeProbe, WakeProbeOptions};

use crate::errors::{throw, OrThrow};

/// probeWakeups() options after the JavaScript layer checked their types; absent: the engine's
/// defaults.
#[napi(object, object_to_js = false)]
pub struct NativeProbeOptions {
    pub duration_ns: Option<f64>,
    pub period_ns: Option<f64>,
    pub nap_ns: Option<f64>,
    pub spin_ns: Option<f64>,
    pub cpu: Option<f64>,
    /// 0: normal scheduling.
    pub priority: Option<f64>,
}

/// How late the timed wake-ups were, ns.
#[napi(object, object_from_js = false)]
pub struct NativeWakeLateness {
    pub count: f64,
    pub sleeps: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub p999_ns: f64,
    pub max_ns: f64,
    #[napi(js_name = "over1ms")]
    pub over_1ms: f64,
}

/// How often and for how long the spinning thread lost the CPU, ns.
#[napi(object, object_from_js = false)]
pub struct NativeCpuLoss {
    pub spin_ns: f64,
    pub gaps: f64,
    pub gap_p50_ns: f64,
    pub gap_p99_ns: f64,
    pub gap_max_ns: f64,
    pub lost_ns: f64,
    pub interval_p50_ns: f64,
}

/// A phase that was skipped (length 0) is absent.
#[napi(object, object_from_js = false)]
pub struct NativeWakeProbe {
    pub wakeups: Option<NativeWakeLateness>,
    pub cpu_loss: Option<NativeCpuLoss>,
}

impl From<WakeLateness> for NativeWakeLateness {
    fn from(w: WakeLateness) -> Self {
        NativeWakeLateness {
            count: w.count as f64,
            sleeps: w.sleeps as f64,
            p50_ns: w.p50_ns as f64,
            p99_ns: w.p99_ns as f64,
            p999_ns: w.p999_ns as f64,
            max_ns: w.max_ns as f64,
            over_1ms: w.over_1ms as f64,
        }
    }
}

impl From<CpuLoss> for NativeCpuLoss {
    fn from(c: CpuLoss) -> Self {
        NativeCpuLoss {
            spin_ns: c.spin_ns as f64,
            gaps: c.gaps as f64,
            gap_p50_ns: c.gap_p50_ns as f64,
            gap_p99_ns: c.gap_p99_ns as f64,
            gap_max_ns: c.gap_max_ns as f64,
            lost_ns: c.lost_ns as f64,
            interval_p50_ns: c.interval_p50_ns as f64,
        }
    }
}

/// The probe, run off the JavaScript thread.
pub struct ProbeTask {
    options: WakeProbeOptions,
}

impl Task for ProbeTask {
    /// An engine error is carried to `resolve`, which has the `Env` to build its coded
    /// JavaScript error (code, errno, syscall).
    type Output = Result<WakeProbe, Error>;
    type JsValue = NativeWakeProbe;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(udpcom_engine::probe_wakeups(&self.options))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<NativeWakeProbe> {
        let probe = output.map_err(|error| throw(&env, error))?;
        Ok(NativeWakeProbe {
            wakeups: probe.wakeups.map(NativeWakeLateness::from),
            cpu_loss: probe.cpu_loss.map(NativeCpuLoss::from),
        })
    }
}

/// Measures how late timed wake-ups are and how often a running thread loses the CPU (see the
/// engine's `probe` module). Throws for bad options; rejects when the probe thread cannot be set
/// up (EPERM for a priority without permission, EINVAL for a CPU that does not exist).
#[napi(ts_return_type = "Promise<NativeWakeProbe>")]
pub fn probe_wakeups(env: Env, options: NativeProbeOptions) -> napi::Result<AsyncTask<ProbeTask>> {
    let defaults = WakeProbeOptions::default();
    // Only "is it an integer" here; the engine checks the ranges.
    let int = |name: &str, value: Option<f64>, default: u64| match value {
        Some(v) => integer(&format!("\"options.{name}\""), v, 0, u64::MAX >> 11),
        None => Ok(default),
    };
    let options = WakeProbeOptions {
        duration_ns: int("durationNs", options.duration_ns, defaults.duration_ns).or_throw(&env)?,
        period_ns: int("periodNs", options.period_ns, defaults.period_ns).or_throw(&env)?,
        nap_ns: int("napNs", options.nap_ns, defaults.nap_ns).or_throw(&env)?,
        spin_ns: int("spinNs", options.spin_ns, defaults.spin_ns).or_throw(&env)?,
        cpu: options
            .cpu
            .map(|cpu| int("cpu", Some(cpu), 0).map(|c| c as usize))
            .transpose()
            .or_throw(&env)?,
        priority: match int("priority", options.priority, 0).or_throw(&env)? {
            0 => None,
            p => Some(i32::try_from(p).unwrap_or(i32::MAX)),
        },
    };
    options.validate().or_throw(&env)?;
    Ok(AsyncTask::new(ProbeTask { options }))
}
