//! A batch processor's queue: bounded, handing out batches when one is full,
//! when the schedule delay has passed since the last export, or on flush.

use std::collections::VecDeque;

use crate::config::BatchSettings;

pub struct BatchQueue<T> {
    items: VecDeque<T>,
    settings: BatchSettings,
    /// When the schedule last fired; `None` until the first poll.
    last_export: Option<u64>,
}

impl<T> BatchQueue<T> {
    pub fn new(settings: BatchSettings) -> Self {
        BatchQueue { items: VecDeque::new(), settings, last_export: None }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.items.len() >= self.settings.max_queue
    }

    pub fn capacity(&self) -> usize {
        self.settings.max_queue
    }

    pub fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// The batches due at `now`. Without `flush`, a batch is taken only while
    /// exports not yet settled leave room for it: `pending` items are held
    /// already, and the queue's bound covers both.
    pub fn due(&mut self, now: u64, flush: bool, pending: usize) -> Vec<Vec<T>> {
        let delay = self.settings.schedule_delay_ms.saturating_mul(1_000_000);
        let last = *self.last_export.get_or_insert(now);
        let timer_fired = now >= last.saturating_add(delay);
        // At least one item per batch, so the loop always progresses.
        let max_batch = self.settings.max_batch.max(1);
        let mut room = self.settings.max_queue.saturating_sub(pending);
        let mut batches = Vec::new();
        while !self.items.is_empty() && (flush || timer_fired || self.items.len() >= max_batch) {
            let n = self.items.len().min(max_batch);
            if !flush && n > room {
                break;
            }
            room = room.saturating_sub(n);
            batches.push(self.items.drain(..n).collect());
        }
        if !batches.is_empty() || timer_fired {
            self.last_export = Some(now);
        }
        batches
    }

    /// When the schedule fires next (unix ns).
    pub fn next_due(&self, now: u64) -> u64 {
        self.last_export.unwrap_or(now).saturating_add(self.settings.schedule_delay_ms.saturating_mul(1_000_000))
    }

    /// Empties the queue; returns how many items it held.
    pub fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        n
    }
}
