//! SIGINT (Ctrl-C) and SIGTERM during `pnodec train`: the first one is noted (training stops
//! after the current iteration and saves its work), a second one of either ends the process
//! at once with 130 (SIGINT) or 143 (SIGTERM), as the default action would. The handlers
//! (signal-hook) live as long as an [`Interrupt`]; dropping it restores the previous ones.

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A signal that stops training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: `kill`, a job scheduler's time limit.
    Terminate,
}

impl Signal {
    /// The signal's name (`SIGINT`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit status after it: 128 + the signal number.
    pub fn exit(self) -> crate::Exit {
        match self {
            Signal::Interrupt => crate::Exit::Interrupted,
            Signal::Terminate => crate::Exit::Terminated,
        }
    }
}

/// SIGINT and SIGTERM handlers that note the signal instead of ending the process.
#[derive(Debug)]
pub struct Interrupt {
    which: Arc<AtomicUsize>,
    ids: Vec<SigId>,
}

impl Interrupt {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Interrupt> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut me = Interrupt {
            which: Arc::new(AtomicUsize::new(0)),
            ids: Vec::new(),
        };
        for (signal, code) in [(SIGINT, 130), (SIGTERM, 143)] {
            // Registered first, so it runs before this signal sets `stop`: only a second
            // signal finds it set and exits.
            me.ids.push(flag::register_conditional_shutdown(
                signal,
                code,
                Arc::clone(&stop),
            )?);
            me.ids.push(flag::register(signal, Arc::clone(&stop))?);
            let value = usize::try_from(signal).unwrap_or(usize::MAX);
            me.ids
                .push(flag::register_usize(signal, Arc::clone(&me.which), value)?);
        }
        Ok(me)
    }

    /// The signal received so far, if any (the last one).
    pub fn signal(&self) -> Option<Signal> {
        let which = self.which.load(Ordering::SeqCst);
        if which == 0 {
            None
        } else if i32::try_from(which) == Ok(SIGTERM) {
            Some(Signal::Terminate)
        } else {
            Some(Signal::Interrupt)
        }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
