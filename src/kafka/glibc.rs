//! librdkafka's large buffers returned to the system when freed: glibc's
//! mmap threshold fixed at 1 MiB.
//!
//! librdkafka is C and allocates with glibc's malloc (andon's own memory
//! is mimalloc's, src/main.rs). It reads each fetch response whole into one
//! buffer, several MB while catching up (up to `max.partition.fetch.bytes`
//! a partition), and frees it when the last record in it is consumed.
//! glibc serves a buffer that large with `mmap` and unmaps it when freed,
//! but only until the first such free: it then raises its threshold to the
//! freed size (up to 32 MiB) and serves later buffers from its heaps, where
//! they fragment and stay resident. After catching up on 1,000,000
//! one-complaint keys on Apache Kafka, one broker thread's heap held
//! 60 MB. Setting the threshold turns that adjustment off, so fetch
//! responses of 1 MiB and more come and go with `mmap`; smaller buffers
//! (steady-state fetches, produce requests) stay on the heap. It took
//! 19–40 bytes a key off the process (`MODE=memory scripts/bench-peers
//! --apache`, README, "Memory per active key"), for about a fifth more
//! first-touch page faults.
//!
//! `main` sets it as soon as logging is up, before any librdkafka client
//! or MockCluster exists; [`crate::kafka::client`] sets it too, for the
//! tests that build clients without `main`. An operator who set the
//! threshold (`MALLOC_MMAP_THRESHOLD_`, or `glibc.malloc.mmap_threshold`
//! in `GLIBC_TUNABLES`) keeps theirs.

/// Buffers of at least this many bytes are mapped and unmapped one by one.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`], once per process,
/// unless the operator chose one.
pub fn return_large_buffers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let env = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some();
        let tunables = std::env::var("GLIBC_TUNABLES").ok();
        if !operator_chose(env, tunables.as_deref()) {
            set_threshold();
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_threshold() {
    // SAFETY: mallopt takes glibc's own locks and only changes a setting
    // for future allocations; the value is within its limit (32 MiB).
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
    if ok != 1 {
        tracing::warn!("glibc refused mmap_threshold={MMAP_THRESHOLD}: librdkafka's fetch buffers may stay resident");
    }
}

/// Not glibc: nothing to set (musl and others keep no dynamic threshold).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_threshold() {}

/// Whether the operator set glibc's threshold themselves: through its
/// environment variable, or as a tunable (`GLIBC_TUNABLES=a=1:b=2`; an
/// entry without a value is one glibc ignores).
fn operator_chose(env_var_set: bool, tunables: Option<&str>) -> bool {
    env_var_set
        || tunables.is_some_and(|t| {
            t.split(':').any(|kv| kv.split_once('=').is_some_and(|(k, _)| k == "glibc.malloc.mmap_threshold"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_threshold_is_kept() {
        assert!(!operator_chose(false, None));
        assert!(operator_chose(true, None));
        assert!(operator_chose(false, Some("glibc.malloc.mmap_threshold=65536")));
        assert!(operator_chose(false, Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536")));
        assert!(!operator_chose(false, Some("glibc.malloc.arena_max=2")));
        assert!(!operator_chose(false, Some("glibc.malloc.mmap_threshold_x=1")));
        assert!(!operator_chose(false, Some("glibc.malloc.mmap_threshold")));
    }

    /// Set in a child process that runs only this test: it is `Some` there.
    const CHILD: &str = "ANDON_GLIBC_TEST_CHILD";

    /// glibc's own behaviour, which the module rests on: after a large
    /// buffer is freed, the next one of that size is still mapped on its
    /// own. Without the fixed threshold the free raises glibc's, and the
    /// second buffer comes from the heap. A mapped chunk is whole pages
    /// less its 16-byte header (64-bit); a heap chunk's usable size is a
    /// multiple of 16 plus 8, never that.
    ///
    /// Measured in a fresh process of this test binary running this test
    /// alone: in this one, other tests (whose Rust allocations are glibc's
    /// too: the library has no global allocator) can leave free heap space
    /// a large buffer would come from whatever the threshold, and an
    /// operator's settings or a preloaded allocator are not what it checks.
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    #[allow(unsafe_code)]
    #[test]
    fn a_freed_large_buffer_does_not_move_the_next_onto_the_heap() {
        const NAME: &str = "kafka::glibc::tests::a_freed_large_buffer_does_not_move_the_next_onto_the_heap";
        if std::env::var_os(CHILD).is_some() {
            return_large_buffers();
            let size = 4 * MMAP_THRESHOLD;
            let page = 4096;
            for attempt in 0..2 {
                // SAFETY: a plain malloc/free pair; the pointer is only measured.
                let mapped = unsafe {
                    let p = libc::malloc(size);
                    assert!(!p.is_null());
                    let usable = libc::malloc_usable_size(p);
                    libc::free(p);
                    (usable + 16) % page == 0
                };
                assert!(mapped, "buffer {attempt} of {size} bytes came from glibc's heap");
            }
            println!("both buffers mapped");
            return;
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = std::process::Command::new(exe)
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env_remove("MALLOC_MMAP_THRESHOLD_")
            .env_remove("GLIBC_TUNABLES")
            .env_remove("LD_PRELOAD")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("both buffers mapped"),
            "the child failed or did not measure: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
