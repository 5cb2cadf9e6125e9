//! One-shot crash injection for the crash-recovery tests of ingest, compaction, retention and
//! erasure: a run armed with a step fails with [`PortError::Injected`] right after it, as a
//! crash there would leave things.

use std::sync::Mutex;

use crate::ports::PortError;

/// A step after which a run can be made to stop.
pub trait CrashStep: Copy + PartialEq {
    /// How the injected fault names the step.
    fn label(self) -> String;
}

/// Armed with a step, fires once when the run passes that step.
#[derive(Debug)]
pub struct FaultSwitch<S>(Mutex<Option<S>>);

impl<S> Default for FaultSwitch<S> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<S: CrashStep> FaultSwitch<S> {
    pub fn arm(&self, step: S) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(step);
    }

    pub(crate) fn check(&self, step: S) -> Result<(), PortError> {
        let mut armed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if *armed == Some(step) {
            *armed = None;
            return Err(PortError::Injected(step.label()));
        }
        Ok(())
    }
}
