//! `drop`: discards the event (with `percentage` to drop only some).

use super::{Filter, Outcome};
use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};

pub struct Drop {
    percentage: f64,
}

impl Drop {
    pub fn build(s: &mut Settings) -> Result<Drop, PluginError> {
        let percentage = s
            .string("percentage")?
            .and_then(|p| p.parse().ok())
            .unwrap_or(100.0);
        Ok(Drop { percentage })
    }
}

impl Filter for Drop {
    fn apply(&self, event: Event) -> Outcome {
        if self.percentage >= 100.0 || rand_percent() < self.percentage {
            Outcome::Dropped
        } else {
            Outcome::Done(event)
        }
    }
}

fn rand_percent() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 10_000) as f64 / 100.0
}
