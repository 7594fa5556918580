//! The web view's rendering choices, made before WebKitGTK starts.
//!
//! WebKitGTK reads these from the environment once per process, before Tauri's builder
//! runs and before it launches its web process, which inherits them; no API sets them
//! later. This crate forbids `unsafe`, so `std::env::set_var` is out: the app re-executes
//! itself (same pid, arguments and descriptors) with them added, once, at the top of
//! `run()`.
//!
//! This UI is a few hundred DOM nodes and needs neither GPU compositing nor an optimising
//! JavaScript compiler. With a four-person room open, the memory bench
//! (`cargo bench -p salon-desktop --bench memory --profile dev`, footprint with shared
//! pages counted once) went from 290 MiB to 260 MiB on the debug build, and from 277 MiB
//! to 244 MiB on the release build (Xvfb, Mesa's software GL, WebKitGTK 2.50).
//! `SALON_WEBVIEW_GPU=1` keeps WebKit's defaults; a variable already set is left as it is.
//! Measured again on 2026-12-05: 257–261 MiB debug, 241–243 MiB release.
//!
//! Tried and not kept, as none moved that figure by more than run-to-run noise (±1 MiB).
//! The biggest item left is Mesa's libLLVM, 43 MiB resident in the web process. WebKitGTK
//! 2.50's web process creates an EGL display when its drawing area first reads its
//! preferences, even with compositing off (MiniBrowser with
//! `--features=!AcceleratedCompositing` too). Debian's Mesa has a single driver file, and it
//! links LLVM. LLVM's pages are touched by loading it (relocations, static constructors), so
//! `GALLIUM_DRIVER=softpipe` and `DRAW_USE_LLVM=0` change nothing, nor does
//! `WEBKIT_SKIA_ENABLE_CPU_RENDERING=1`. Making EGL fail aborts the web process. For
//! malloc: `MALLOC_ARENA_MAX=2`, WebKit's system-malloc switch (`Malloc=1`) and a smaller
//! JavaScriptCore heap (`JSC_forceRAMSize`) made no difference either.

use std::ffi::{OsStr, OsString};

/// Each variable with the value Salon wants, and why.
const CHOICES: &[(&str, &str)] = &[
    // Paint into shared memory instead of compositing with OpenGL in the web process.
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    // Hand frames over in shared memory: the app process then needs no GL of its own.
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    // GTK probes GLX when it opens the display, loading the GL driver for nothing.
    ("GDK_GL", "disable"),
    // JavaScriptCore's interpreter only: the JIT tiers' code and compiler pages cost about
    // 12 MiB and this UI's scripts do not need them (a smaller attack surface too).
    ("JSC_useJIT", "0"),
];

/// WebKit asks EGL, in the app process, which GPU device to name to the web process,
/// which loads the whole GL driver (Mesa's, with LLVM: ~9 MiB of the app process's own)
/// just to learn a path that shared-memory rendering never opens. Naming the device
/// skips that query.
const RENDER_DEVICE: &str = "WEBKIT_WEB_RENDER_DEVICE_FILE";

/// The device to name: the first DRM render node, or, without a GPU, the path the first
/// one would have (nothing opens it, see [`RENDER_DEVICE`]).
fn render_device() -> OsString {
    let mut nodes: Vec<OsString> = std::fs::read_dir("/dev/dri")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().into_os_string())
        .filter(|p| {
            std::path::Path::new(p)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("renderD"))
        })
        .collect();
    nodes.sort();
    nodes
        .into_iter()
        .next()
        .unwrap_or_else(|| OsString::from("/dev/dri/renderD128"))
}

/// The variables to add to an environment read through `var`: none when
/// `SALON_WEBVIEW_GPU=1`, and never one that is already set.
pub fn missing(
    var: impl Fn(&str) -> Option<OsString>,
    render_device: impl FnOnce() -> OsString,
) -> Vec<(&'static str, OsString)> {
    if var("SALON_WEBVIEW_GPU").is_some_and(|v| v == "1") {
        return Vec::new();
    }
    let mut add: Vec<(&'static str, OsString)> = CHOICES
        .iter()
        .filter(|(name, _)| var(name).is_none())
        .map(|(name, value)| (*name, OsString::from(value)))
        .collect();
    // Only with the DMA-BUF renderer off: with it on, the device is the one rendered on.
    let dmabuf_off = var("WEBKIT_DISABLE_DMABUF_RENDERER").is_none_or(|v| v != OsStr::new("0"));
    if var(RENDER_DEVICE).is_none() && dmabuf_off {
        add.push((RENDER_DEVICE, render_device()));
    }
    add
}

/// Re-executes the app with the web view's variables when any is missing; returns when
/// none is (or when re-executing failed: the app then runs with WebKit's defaults).
pub fn apply() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let add = missing(|name| std::env::var_os(name), render_device);
        if add.is_empty() {
            return;
        }
        let mut args = std::env::args_os();
        let arg0 = args
            .next()
            .unwrap_or_else(|| OsString::from("salon-desktop"));
        // The binary by its own path, so the process keeps its name (`ps`, `top`); if a
        // package upgrade replaced that file meanwhile, /proc/self/exe is still this one.
        let exe = std::env::current_exe()
            .ok()
            .filter(|p| p.is_file())
            .unwrap_or_else(|| "/proc/self/exe".into());
        let err = std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .envs(add)
            .exec();
        eprintln!("salon: could not restart with the web view's settings ({err}); going on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn names<'a>(add: &[(&'a str, OsString)]) -> Vec<&'a str> {
        add.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn a_plain_start_adds_every_choice_and_the_render_device() {
        let add = missing(env(&[]), || OsString::from("/dev/dri/renderD129"));
        assert_eq!(
            names(&add),
            [
                "WEBKIT_DISABLE_COMPOSITING_MODE",
                "WEBKIT_DISABLE_DMABUF_RENDERER",
                "GDK_GL",
                "JSC_useJIT",
                RENDER_DEVICE
            ]
        );
        assert_eq!(add[4].1, "/dev/dri/renderD129");
    }

    #[test]
    fn after_the_restart_nothing_is_missing() {
        let set: Vec<(&str, String)> = missing(env(&[]), || OsString::from("/dev/x"))
            .into_iter()
            .map(|(n, v)| (n, v.to_string_lossy().into_owned()))
            .collect();
        let set: Vec<(&str, &str)> = set.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert!(missing(env(&set), || OsString::from("/dev/x")).is_empty());
    }

    #[test]
    fn what_the_user_set_stays_and_gpu_keeps_the_defaults() {
        let add = missing(env(&[("JSC_useJIT", "1")]), || OsString::from("/dev/x"));
        assert!(!names(&add).contains(&"JSC_useJIT"));
        assert!(
            missing(env(&[("SALON_WEBVIEW_GPU", "1")]), || OsString::from(
                "/dev/x"
            ))
            .is_empty()
        );
        // The DMA-BUF renderer asked for: its device is WebKit's to find.
        let add = missing(env(&[("WEBKIT_DISABLE_DMABUF_RENDERER", "0")]), || {
            OsString::from("/dev/x")
        });
        assert!(!names(&add).contains(&RENDER_DEVICE));
    }
}
