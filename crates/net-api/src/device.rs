//! Booting a device and running it until it is done: the Lua state with the firmware's libraries and
//! modules, the script from flash, the event loop, and what a reset does to the run.
//! [`run_console`] does the same with the serial console open (`console/mod.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use host_backend::flash::Flash;
use mlua::{Function, Lua, LuaOptions, Table};

use crate::config::{Config, Firmware, OnReset};
use crate::console::{Console, ConsoleBoot};
use crate::event_loop::{self, Outcome};
use crate::lauxlib;
use crate::persist::Persist;
use crate::retained::Retained;
use crate::runtime::{Helpers, ResetCause, Runtime};

/// The firmware's boot banner for a generation, with this simulator's name and version. NodeMCU's
/// own test harness recognises a reboot by `powered by Lua [0-9.]+ on SDK [0-9.]+`. The version
/// and SDK strings are those the generation's builds printed (`user_version.h`, and the SDK's
/// `system_get_sdk_version()`); the build date of a release build was "unspecified".
pub fn banner(fw: Firmware) -> String {
    let lua = if cfg!(feature = "lua53") {
        "5.3.5"
    } else {
        "5.1.4"
    };
    let (version, sdk) = match fw {
        Firmware::V1_5 => ("1.5.4.1", "1.5.4.1(39cb9a32)"),
        Firmware::V2_2 => ("2.2.1.0", "2.2.1(6ab97e9)"),
        Firmware::V3_0 => ("3.0.0.0", "3.0.1"),
    };
    let build = match fw {
        Firmware::V3_0 => "2026-11-25",
        _ => "unspecified",
    };
    format!(
        "\nNodeMCU {version} (nodemcu-sim {}) build {build} powered by Lua {lua} on SDK {sdk}\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// One booted device: its Lua state and its runtime.
pub struct Device {
    pub lua: Lua,
    pub rt: Rc<Runtime>,
}

impl Device {
    /// Powers a device on: a fresh Lua state with the profile's libraries and every module.
    /// `reset` is why the previous boot ended, for `node.bootreason()`.
    pub fn boot(cfg: Config, reset: Option<ResetCause>) -> Result<Device, String> {
        Device::boot_with(cfg, reset, Rc::default())
    }

    /// Powers a device on with what earlier boots of the same run left (`persist.rs`: the
    /// SDK's saved configuration, the RTC memory of `retained.rs`).
    pub fn boot_with(
        cfg: Config,
        reset: Option<ResetCause>,
        persist: Rc<Persist>,
    ) -> Result<Device, String> {
        let flash = Flash::new(&cfg.flash)
            .map_err(|e| format!("flash directory {}: {e}", cfg.flash.display()))?
            .with_capacity(cfg.flash_size);
        let device = cfg.target.is_device();
        // SAFETY: the debug library (needed for debug.traceback) can reach mlua's own objects:
        // userdata metatables and their finalisers, C functions' upvalues and frames. Scripts get
        // the firmware's subset, which `stdlib::install` trims, behind the guard of `debug.lua`,
        // which keeps every one of those out of reach. No C modules can be loaded (package.loadlib
        // is removed).
        // Lua's pcall must not catch Rust panics: the watchdog unwinds through them.
        let options = LuaOptions::new().catch_rust_panics(false);
        let lua = unsafe { Lua::unsafe_new_with(crate::stdlib::libraries(device), options) };
        let retained = (*persist.get(Retained::power_on)).clone();
        let rt = Runtime::new(cfg, flash, persist);
        rt.state(move |_| retained);
        let setup = || -> mlua::Result<()> {
            let h: Table = lua
                .load(include_str!("prelude.lua"))
                .set_name("=[sim]")
                .call(())?;
            lauxlib::install_shim(&lua)?;
            *rt.helpers.borrow_mut() = Some(Helpers {
                pcallx: h.get("pcallx")?,
                traceback: h.get("traceback")?,
                raise: h.get("raise")?,
                strings: lauxlib::StringMaker::new(&lua)?,
                on_tables: crate::net::events::TableMaker::new(&lua)?,
                pcall: h.get("pcall")?,
            });
            lua.set_app_data(rt.clone());
            crate::stdlib::install(&lua, &rt)?;
            crate::modules::install(&lua, &rt, reset)?;
            crate::stdlib::seal_rom(&lua)?;
            crate::watchdog::install(&lua, &rt)?;
            lauxlib::seal_bindings(&lua);
            Ok(())
        };
        setup().map_err(|e| format!("device setup failed: {e}"))?;
        rt.heap.apply_limit(&lua, &rt);
        Ok(Device { lua, rt })
    }

    /// Runs a flash file as the main chunk, protected, with the watchdog armed.
    /// `Err` holds the message and traceback, as `lua` prints them.
    pub fn run_file(&self, name: &str) -> Result<(), String> {
        let f = crate::stdlib::load_flash(&self.lua, &self.rt, name)?;
        let r = self.run_main(&f);
        self.rt.heap.run_finalisers(&self.lua); // what the main chunk left for the collector
        r
    }

    /// The chunk is called straight from Rust with the firmware's message handler, so a traceback
    /// taken inside it ends at `in main chunk`, with no frame of the simulator's below.
    fn run_main(&self, f: &Function) -> Result<(), String> {
        let handler = self
            .rt
            .helpers
            .borrow()
            .as_ref()
            .expect("helpers")
            .traceback
            .clone();
        self.rt.feed_watchdog();
        let r = catch_unwind(AssertUnwindSafe(|| {
            crate::callback::pcall(&self.lua, Some(&handler), f, ())
        }));
        match r {
            Ok(Ok(Err(msg))) => Err(lauxlib::error_value_text(&msg)
                .unwrap_or_else(|| "(error object is not a string)".into())),
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Err(e)) => Err(lauxlib::lua_error_text(&e)),
            Err(p) => {
                event_loop::stop_unwinding(&self.rt, p);
                Ok(())
            }
        }
    }

    /// Runs the event loop until the device is done, resets, or times out.
    pub async fn run_loop(&self) -> Outcome {
        event_loop::run(&self.lua, &self.rt, None).await
    }

    /// Runs the event loop with the console open: typed lines run while timers and sockets go on.
    pub async fn run_loop_with_console(&self, console: &mut Console) -> Outcome {
        event_loop::run(&self.lua, &self.rt, Some(console)).await
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        crate::net::tcpsocket::abort_all(&self.rt);
        self.rt.shutdown();
        // The Lua state is left open, never closed: closing runs every pending finaliser, and a
        // script's could call a binding whose mlua function was finalised just before it (on
        // freed memory). A board that resets has nothing to finalise either. What stays is the
        // state's memory, once per boot.
        std::mem::forget(self.lua.clone());
    }
}

/// One boot: power on, run the script, run the loop.
/// One boot, from power-on to the end of its run: how it ended and the device time it ran.
async fn boot_once(
    cfg: &Config,
    reset: Option<ResetCause>,
    persist: Rc<Persist>,
    console: Option<&mut Console>,
) -> (Outcome, Duration) {
    let device = match Device::boot_with(cfg.clone(), reset, persist) {
        Ok(d) => d,
        Err(e) => return (Outcome::MainError(e), Duration::ZERO),
    };
    let outcome = run_boot(cfg, reset, &device, console).await;
    (outcome, device.rt.now())
}

/// The banner, the console, the script, then the loop, for a device just booted.
async fn run_boot(
    cfg: &Config,
    reset: Option<ResetCause>,
    device: &Device,
    mut console: Option<&mut Console>,
) -> Outcome {
    let mode = console.as_ref().map(|c| c.boot);
    if reset.is_some() || matches!(mode, Some(ConsoleBoot::Boot { .. })) {
        device.rt.uart(banner(cfg.firmware).as_bytes());
    }
    // The firmware queues the console's first prompt before init.lua runs.
    if let (Some(ConsoleBoot::Boot { .. }), Some(c)) = (mode, console.as_deref_mut())
        && let Err(e) = c.attach(&device.lua, &device.rt)
    {
        return Outcome::MainError(format!("console: {e}"));
    }
    let script = match mode {
        Some(ConsoleBoot::Boot { run_init: false }) => None,
        _ => cfg.script.clone().or_else(|| {
            device
                .rt
                .flash
                .read("init.lua")
                .map(|_| "init.lua".to_string())
        }),
    };
    if let Some(name) = script
        && let Err(msg) = device.run_file(&name)
    {
        match mode {
            None | Some(ConsoleBoot::UartOnly) => return Outcome::MainError(msg),
            // At the console the board prints the error and carries on, with no reset.
            Some(ConsoleBoot::Boot { .. }) => {
                // An output function's own error here has nowhere to go.
                let _ = device.rt.print(format!("{msg}\n").as_bytes());
            }
            // `run -i`: reported as `run` reports it, then the console opens anyway.
            Some(ConsoleBoot::AfterScript) => device.rt.diag(&msg),
        }
    }
    let Some(c) = console else {
        return device.run_loop().await;
    };
    if mode == Some(ConsoleBoot::AfterScript)
        && let Err(e) = c.attach(&device.lua, &device.rt)
    {
        return Outcome::MainError(format!("console: {e}"));
    }
    device.run_loop_with_console(c).await
}

/// Runs a device from power-on until its run ends, booting again after resets when configured.
pub fn run(cfg: Config) -> Outcome {
    run_with(cfg, None)
}

/// Runs a device with its serial console open until the run ends: the console keeps it alive
/// until its input ends, and it stays connected across resets, as a serial cable does.
/// The console is dropped when the run ends, which tells its terminal side the device is gone.
pub fn run_console(cfg: Config, console: Console) -> Outcome {
    run_with(cfg, Some(console))
}

/// The least device time a boot counts toward the run's time limit (`--timeout`): about what
/// a board takes from reset to its first line of Lua. A device that resets at once, boot after
/// boot, would otherwise never reach the limit.
const REBOOT_TIME: Duration = Duration::from_millis(100);

fn run_with(cfg: Config, mut console: Option<Console>) -> Outcome {
    let tokio_rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return Outcome::MainError(format!("cannot start the event loop: {e}")),
    };
    let mut reset = None;
    let persist = Rc::new(Persist::default());
    // The run's time limit counts the device time of every boot, so a device that keeps
    // resetting still stops at it.
    let mut spent = Duration::ZERO;
    loop {
        let local = tokio::task::LocalSet::new();
        // The device runs as a task of the LocalSet, like its sockets: an I/O task waking it
        // then only queues it on this thread, instead of signalling the runtime's driver. The
        // task owns the console for the boot and hands it back, so it survives resets.
        let mut boot_cfg = cfg.clone();
        if let Some(limit) = cfg.time_limit_ms {
            let left = Duration::from_millis(limit).saturating_sub(spent);
            if left.is_zero() && reset.is_some() {
                return Outcome::TimedOut;
            }
            boot_cfg.time_limit_ms = Some(left.as_millis() as u64);
        }
        let mut lent = console.take();
        let boot_persist = persist.clone();
        let device = local.spawn_local(async move {
            let outcome = boot_once(&boot_cfg, reset, boot_persist, lent.as_mut()).await;
            (outcome, lent)
        });
        let ((outcome, ran), back) = local
            .block_on(&tokio_rt, device)
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        console = back;
        drop(local); // closes every socket of this boot
        spent += ran.max(REBOOT_TIME);
        match outcome {
            Outcome::Reset(cause) if cfg.on_reset == OnReset::Restart => {
                (cfg.sinks.diag)(&format!(
                    "device reset ({}); booting again",
                    cause.describe()
                ));
                reset = Some(cause);
                // A deep sleep lasts its time on a real clock; a virtual one wakes at once.
                // Either way it is device time toward the limit, and ends there.
                if let Some(d) = persist.get(Retained::power_on).after_reset(cause) {
                    let d = match cfg.time_limit_ms {
                        Some(l) => d.min(Duration::from_millis(l).saturating_sub(spent)),
                        None => d,
                    };
                    spent += d;
                    if !cfg.virtual_time {
                        std::thread::sleep(d);
                    }
                }
            }
            other => {
                if let Some(t) = &cfg.trace {
                    t.flush();
                }
                return other;
            }
        }
    }
}
