//! The applier's commands (rules, rebuilds, definitions, destinations and journeys), carried
//! out between two events, and the timer ticks it appends to the log for journeys.

use super::{batch_threads, Command, Output, Worker, WriterJob};
use crate::activation::{activate_audience_changes, tick_event, TICK_SOURCE};
use crate::cadence::Cadence;
use crate::segments::AudienceOutput;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};
use tessera_core::segment::Segmenter;
use tessera_store::AppendBatch;

impl Worker {
    /// Carries out one command between two events.
    pub(super) fn command(
        &self,
        cmd: Command,
        pending: &mut usize,
        writer: &SyncSender<WriterJob>,
        out: &mut Output,
        docs: &mut Cadence,
    ) {
        let ws = &self.state.workspace;
        match cmd {
            Command::SetRules(rules) => {
                // A barrier: events so far were applied under the old rules; the documents
                // written now carry the new ones, so a restart applies each event under the
                // rules it was applied under live.
                self.write_engine().set_rules(rules);
                self.commit(pending, writer, true, out);
                docs.started();
            }
            Command::Rebuild(rules, forget, reply) => {
                self.commit(pending, writer, false, out);
                match self.rebuild(rules, &forget).map_err(|e| e.to_string()) {
                    Err(e) => {
                        tracing::error!(workspace = %ws, error = %e, "rebuild failed");
                        let _ = reply.send(Err(e));
                    }
                    Ok(()) => {
                        // Answered once what the rebuild changed is in the state file.
                        self.activate_segment_changes(out, |seg, audience| audience.take_from(seg));
                        self.commit_then(pending, writer, true, out, Some(reply));
                        docs.started();
                    }
                }
            }
            Command::SetDefinitions(registry, reply) => {
                let started = Instant::now();
                self.activate_segment_changes(out, |seg, audience| {
                    let new_ids: std::collections::BTreeSet<&str> =
                        registry.audiences.iter().map(|a| a.id.as_str()).collect();
                    let dropped: Vec<String> = seg
                        .registry()
                        .audiences
                        .iter()
                        .filter(|a| !new_ids.contains(a.id.as_str()))
                        .map(|a| a.id.clone())
                        .collect();
                    audience.dropped.extend(dropped);
                    seg.set_registry(registry, batch_threads());
                    audience.take_from(seg);
                });
                tracing::info!(workspace = %ws, took_ms = started.elapsed().as_millis() as u64, "definitions applied");
                // Answered once the changes are in the state file. With documents: a restart
                // must not re-derive events from before this change under the new
                // definitions (that would record entries that never happened).
                self.commit_then(pending, writer, true, out, Some(reply));
                docs.started();
            }
            Command::SetActivation(config, reply) => {
                // Records of earlier events were decided under the old settings: committed
                // first, so a restart does not decide them again under the new ones.
                self.commit(pending, writer, false, out);
                let decided = out.decided.records.len();
                {
                    let engine = self.read_engine();
                    let seg = self.state.segments.read().expect("segments poisoned");
                    let mut act = self.state.activation.write().expect("activation poisoned");
                    config.apply(&mut act, &engine, &seg, &mut out.decided.records);
                }
                self.delivery
                    .configure(&self.state, &config.destinations, false);
                self.hand_over(out, decided);
                self.commit_then(pending, writer, false, out, Some(reply));
            }
        }
    }

    /// Runs `change` on the segmenter (new definitions, a rebuilt state, time passing), then
    /// activates the entries and exits it recorded: synced destinations hear of them,
    /// journeys may start.
    pub(super) fn activate_segment_changes(
        &self,
        out: &mut Output,
        change: impl FnOnce(&mut Segmenter, &mut AudienceOutput),
    ) {
        let decided = out.decided.records.len();
        {
            let engine = self.read_engine();
            let mut seg = self.write_segments();
            let from = out.audience.rows.len();
            change(&mut seg, &mut out.audience);
            let mut act = self.state.activation.write().expect("activation poisoned");
            let position = engine.position();
            activate_audience_changes(
                &engine,
                &seg,
                &mut act,
                &out.audience,
                from,
                position,
                &mut out.decided,
            );
        }
        self.hand_over(out, decided);
    }

    /// How long until the earliest journey timer is due.
    pub(super) fn timer_in(&self) -> Option<Duration> {
        let due = self
            .state
            .activation
            .read()
            .expect("activation poisoned")
            .journeys
            .next_due()?;
        Some(Duration::from_millis(
            (due - crate::state::now_millis()).clamp(0, 60_000) as u64,
        ))
    }

    /// Appends a timer tick to the log once a journey timer is due, so that timers fire at
    /// one place in the log. One tick at a time: while one at or after the due instant is on
    /// its way (and not lost, judging by a few seconds), nothing more is appended.
    pub(super) fn append_tick_when_due(&self, out: &mut Output) {
        let now = crate::state::now_millis();
        let next = self
            .state
            .activation
            .read()
            .expect("activation poisoned")
            .journeys
            .next_due();
        let Some(due) = next.filter(|&d| d <= now) else {
            return;
        };
        if out
            .tick
            .is_some_and(|(at, sent)| at >= due && sent.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        let batch = AppendBatch {
            workspace_id: self.state.workspace.clone(),
            source_id: TICK_SOURCE.to_string(),
            events: vec![tick_event(now)],
        };
        match self.store.append(batch, Box::new(|_| {})) {
            Ok(()) => out.tick = Some((now, Instant::now())),
            Err(e) => {
                tracing::warn!(workspace = %self.state.workspace, error = %e, "appending a timer tick failed; retrying")
            }
        }
    }
}
