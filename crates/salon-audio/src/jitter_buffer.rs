//! Adaptive jitter buffer for one remote speaker, after WebRTC NetEq: the target delay
//! follows a high percentile of the packets' *relative* arrival delay over a recent window
//! rather than a fixed size, so it grows during jitter bursts and shrinks back after them.
//!
//! The buffer is a pure state machine: the caller supplies arrival times and pulls one
//! [`Playout`] decision per frame period; decoding happens elsewhere
//! ([`crate::receiver`]). It never reads a clock, so tests run on simulated time.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::codec::FrameDuration;

/// One received audio frame as the network layer hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// Sender's frame counter: +1 per frame period, wrapping at `u32::MAX`.
    pub seq: u32,
    /// The fixed-size encoded frame.
    pub payload: Vec<u8>,
}

/// What to play for the current frame period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nothing to play: still buffering, or the speaker has gone quiet on the network.
    Silence,
    /// Decode this packet.
    Normal(AudioPacket),
    /// The packet for this period is lost but the next one is here: decode its FEC copy.
    /// The next packet stays buffered and plays normally on its own turn.
    Fec {
        /// Sequence number of the lost frame being recovered.
        lost_seq: u32,
        /// Payload of the packet after it, which carries the FEC copy.
        next_payload: Vec<u8>,
    },
    /// The packet is lost (or late) and nothing can recover it: conceal.
    Conceal,
    /// The buffer holds more than the target: play these two frames in one period
    /// (time compression) to cut the delay by one frame.
    Accelerate(AudioPacket, AudioPacket),
    /// Decode this packet, then time-compress by up to this much (less than a frame):
    /// packets have been waiting longer than the jitter requires.
    Shrink(AudioPacket, Duration),
}

/// Counters and the current delay, for diagnostics and the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Current target delay in frames.
    pub target_frames: usize,
    /// Frames from the next one to play to the newest buffered one.
    pub level_frames: usize,
    /// Packets played from their own data (including accelerated ones).
    pub played: u64,
    /// Frames recovered from a later packet: a copy it carries (counted when played),
    /// or Opus FEC in the next one.
    pub fec_recovered: u64,
    /// Frames concealed (loss or underrun).
    pub concealed: u64,
    /// Packets that arrived after their turn had passed.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Time compressions performed.
    pub accelerated: u64,
    /// Stream restarts (a big sequence jump or a long silence).
    pub resets: u64,
    /// Payloads dropped as malformed before reaching the buffer (counted by
    /// [`crate::Receiver`]; they are then recovered or concealed like lost packets).
    pub malformed: u64,
}

/// Tuning knobs. The defaults fit 10 and 20 ms frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Frame duration of the stream.
    pub frame: FrameDuration,
    /// Percentile of relative delay the target covers (NetEq uses ~0.95–0.97).
    pub quantile: f64,
    /// How far back arrival statistics reach; after a burst the target shrinks once the
    /// burst has left this window.
    pub history: Duration,
    /// Smallest target, in frames.
    pub min_frames: usize,
    /// Largest target, in frames; also bounds memory.
    pub max_frames: usize,
    /// Frames above target the buffer may hold before it accelerates.
    pub accelerate_margin: usize,
    /// Underrun this long and the stream is treated as stopped (back to buffering).
    pub idle_after: Duration,
    /// If every packet played during this long had waited at least a frame (plus a
    /// guard) in the buffer, playout is a frame later than it needs to be: accelerate once.
    pub shrink_window: Duration,
}

impl JitterConfig {
    /// Defaults for the given frame duration.
    pub fn new(frame: FrameDuration) -> Self {
        Self {
            frame,
            quantile: 0.97,
            history: Duration::from_secs(2),
            min_frames: 1,
            // 500 ms: beyond that a live conversation is better off concealing.
            max_frames: (500_000 / frame.micros()) as usize,
            accelerate_margin: 2,
            idle_after: Duration::from_millis(400),
            shrink_window: Duration::from_millis(500),
        }
    }
}

/// How long the extra frame for loss recovery is kept after a lone loss (a start-up
/// hiccup should not cost the latency of a lossy path).
const FEC_HOLD_SHORT: Duration = Duration::from_secs(5);
/// How long it is kept after a loss that came while it was held.
const FEC_HOLD_LONG: Duration = Duration::from_secs(30);
/// Losses at most this many played frames apart count as one burst.
const BURST_SLOTS: u64 = 2;
/// Shrink windows a spare frame must last before a whole frame is dropped.
const WINDOW_HISTORY: usize = 4;
/// Slack always left when shrinking, for scheduling noise (µs).
const SHRINK_GUARD_US: i64 = 1_000;
/// Shrinks below this are not worth the splice (µs).
const MIN_SHRINK_US: i64 = 1_500;
/// A jump this large (either way) means the sender restarted its counter.
const RESET_JUMP: i64 = 3_000;
/// Extended sequence numbers start here so packets just before the first one stay positive.
const EXT_ORIGIN: i64 = 1 << 32;

/// Per-speaker adaptive jitter buffer.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    frame_us: i64,
    /// Buffered (payload, arrival µs, restored from a copy) by extended (unwrapped)
    /// sequence number.
    packets: BTreeMap<i64, (Vec<u8>, i64, bool)>,
    /// Raw and extended sequence of the newest packet seen, to unwrap the next one.
    newest: Option<(u32, i64)>,
    /// Raw sequence number that maps to [`EXT_ORIGIN`].
    origin_raw: u32,
    /// Extended sequence to play next; `None` while buffering.
    next: Option<i64>,
    /// Everything below this has been played or given up on; later arrivals are late.
    floor: Option<i64>,
    /// (arrival µs, arrival µs - seq * frame µs) for packets within `history`.
    delays: VecDeque<(i64, i64)>,
    target_frames: usize,
    underrun_frames: u64,
    /// When the first packet of the current buffering phase arrived.
    buffering_since: Option<i64>,
    /// Shortest time a played packet waited in the buffer during the current shrink
    /// window (µs), and pops so far in it.
    window_min_wait: i64,
    window_pops: u32,
    /// Time compression (µs) to apply with the next normally played packet.
    pending_shrink_us: i64,
    /// Minimum waits of the last few shrink windows (µs), a ring.
    window_history: [i64; WINDOW_HISTORY],
    window_index: usize,
    /// How much audio the caller pulls at a time (µs); see [`Self::set_granularity`].
    granularity_us: i64,
    /// Playout slots since the last loss (saturating); see [`Self::fec_frames`].
    since_loss: u64,
    /// Playout slots the extra frames for loss recovery are kept after the last loss.
    fec_hold: u64,
    /// How many frames back a later packet can restore: 1 with Opus FEC, up to 2 with
    /// copies (see [`crate::payload`]); that many extra frames are held after a loss.
    recovery_depth: i64,
    /// The sender says its listeners report loss (see [`Self::set_hold`]): the extra
    /// frames are held from the first packet, not from the first loss.
    hold_always: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        let min = config.min_frames.max(1);
        Self {
            frame_us: config.frame.micros() as i64,
            config: JitterConfig {
                min_frames: min,
                max_frames: config.max_frames.max(min),
                ..config
            },
            packets: BTreeMap::new(),
            newest: None,
            origin_raw: 0,
            next: None,
            floor: None,
            delays: VecDeque::new(),
            target_frames: min,
            underrun_frames: 0,
            buffering_since: None,
            window_min_wait: i64::MAX,
            window_pops: 0,
            pending_shrink_us: 0,
            window_history: [0; WINDOW_HISTORY],
            window_index: 0,
            granularity_us: config.frame.micros() as i64,
            since_loss: u64::MAX,
            fec_hold: 0,
            recovery_depth: 1,
            hold_always: false,
            stats: JitterStats::default(),
        }
    }

    /// Current counters and delay.
    pub fn stats(&self) -> JitterStats {
        JitterStats {
            target_frames: self.target_frames,
            level_frames: self.level(),
            ..self.stats
        }
    }

    /// Tells the buffer how much audio its caller takes per pull (a frame by default).
    /// Finer pulls let it trim delay in steps smaller than a frame.
    pub fn set_granularity(&mut self, g: Duration) {
        self.granularity_us = (g.as_micros() as i64).clamp(0, self.frame_us);
    }

    /// One extra frame of delay once packets are being lost, so the next packet (and its
    /// copy of the lost one) is usually in hand when a loss is discovered. A lone loss
    /// keeps it for [`FEC_HOLD_SHORT`]; a loss while it is held shows a lossy path and
    /// keeps it for [`FEC_HOLD_LONG`]: every time it is given up, the next loss costs a
    /// concealed frame (and the expansion that wins the frame back), which is what
    /// listeners hear most at a few percent of loss. While the sender says the path is
    /// lossy, the frames are held throughout.
    fn fec_frames(&self) -> i64 {
        if self.hold_always || self.since_loss < self.fec_hold {
            self.recovery_depth
        } else {
            0
        }
    }

    /// Passes on what the latest packet's sender knows of the path
    /// ([`crate::payload::Parsed::hold_frames`]): 0 = no loss reported (hold one frame for
    /// Opus FEC only after a loss here), 1 = loss reported (hold it from now on), 2 =
    /// copies two deep (hold two from now on).
    pub fn set_hold(&mut self, frames: usize) {
        self.recovery_depth = frames.clamp(1, 2) as i64;
        self.hold_always = frames > 0;
    }

    /// Whether a copy of frame `seq` would still be used: its turn has not passed and it
    /// is not buffered already. Lets the caller skip building copies nobody needs.
    pub fn wants(&self, seq: u32) -> bool {
        let ext = self.unwrap_seq(seq);
        !self.packets.contains_key(&ext) && self.floor.is_none_or(|floor| ext >= floor)
    }

    /// Adds a copy of an earlier frame carried by a packet that arrived at `now` (pushed
    /// first with [`Self::push`]). It fills the gap if the frame is still wanted; its
    /// arrival says nothing about that frame's network delay, so it stays out of the delay
    /// statistics. It counts as a recovered loss when it plays, unless the original
    /// arrives first after all (reordered, not lost).
    pub fn push_copy(&mut self, packet: AudioPacket, now: Duration) {
        // Sequence numbers unwrap against the newest packet: a copy needs its carrier.
        if self.newest.is_none() || !self.wants(packet.seq) {
            return;
        }
        let ext = self.unwrap_seq(packet.seq);
        let now_us = now.as_micros() as i64;
        if self.next.is_none() && self.buffering_since.is_none() {
            self.buffering_since = Some(now_us);
        }
        self.packets.insert(ext, (packet.payload, now_us, true));
    }

    /// Counts playout slots since the last loss and sets how long the extra frame stays.
    fn note_loss(&mut self, lost: bool) {
        if !lost {
            self.since_loss = self.since_loss.saturating_add(1);
            return;
        }
        let frames = |d: Duration| d.as_micros() as u64 / self.frame_us.max(1) as u64;
        // Losses a frame or two apart are one burst, one event; a lossy path is a loss
        // that comes back after the stream has played on.
        let repeated = self.fec_frames() > 0 && self.since_loss > BURST_SLOTS;
        self.fec_hold = if repeated {
            frames(FEC_HOLD_LONG)
        } else {
            frames(FEC_HOLD_SHORT)
        };
        self.since_loss = 0;
    }

    /// Current target delay.
    pub fn target_delay(&self) -> Duration {
        Duration::from_micros(self.target_frames as u64 * self.frame_us as u64)
    }

    fn unwrap_seq(&self, seq: u32) -> i64 {
        match self.newest {
            None => EXT_ORIGIN,
            Some((raw, ext)) => ext + i64::from(seq.wrapping_sub(raw) as i32),
        }
    }

    fn reset(&mut self) {
        self.packets.clear();
        self.newest = None;
        self.next = None;
        self.floor = None;
        self.delays.clear();
        self.underrun_frames = 0;
        self.buffering_since = None;
        self.stats.resets += 1;
    }

    /// Adds a packet that arrived at `now` (any monotonic clock, the same for every call).
    pub fn push(&mut self, packet: AudioPacket, now: Duration) {
        let mut ext = self.unwrap_seq(packet.seq);
        if let Some((_, newest)) = self.newest
            && (ext - newest).abs() > RESET_JUMP
        {
            self.reset();
            ext = self.unwrap_seq(packet.seq);
        }
        if self.newest.is_none() {
            self.origin_raw = packet.seq;
        }
        if let Some(entry) = self.packets.get_mut(&ext) {
            if entry.2 {
                // The original of a frame a later packet's copy stood in for: it was
                // reordered, not lost, and its delay is real jitter.
                entry.2 = false;
                self.record_delay(now.as_micros() as i64, ext);
            } else {
                // The first copy already counted towards the delay statistics.
                self.stats.duplicates += 1;
            }
            return;
        }
        let now_us = now.as_micros() as i64;
        // Late packets still count: they are exactly the jitter the target must cover.
        self.record_delay(now_us, ext);
        if self.newest.is_none_or(|(_, newest)| ext > newest) {
            self.newest = Some((packet.seq, ext));
        }
        if self.floor.is_some_and(|floor| ext < floor) {
            self.stats.late += 1;
            return;
        }
        if self.next.is_none() && self.buffering_since.is_none() {
            self.buffering_since = Some(now_us);
        }
        self.packets.insert(ext, (packet.payload, now_us, false));
        // Bound memory against a flood of far-future sequence numbers: drop the oldest.
        while self.packets.len() > self.config.max_frames * 2 {
            if let Some((&oldest, _)) = self.packets.first_key_value() {
                self.packets.remove(&oldest);
                self.floor = Some(oldest + 1);
                if self.next.is_some_and(|n| n <= oldest) {
                    self.next = Some(oldest + 1);
                }
            }
        }
    }

    fn record_delay(&mut self, now_us: i64, ext: i64) {
        self.delays
            .push_back((now_us, now_us - ext * self.frame_us));
        let horizon = now_us - self.config.history.as_micros() as i64;
        while self.delays.front().is_some_and(|&(t, _)| t < horizon) {
            self.delays.pop_front();
        }
    }

    /// Recomputes the target from the relative-delay percentile.
    fn update_target(&mut self) {
        let Some(min) = self.delays.iter().map(|&(_, d)| d).min() else {
            return;
        };
        let mut rel: Vec<i64> = self.delays.iter().map(|&(_, d)| d - min).collect();
        rel.sort_unstable();
        let idx = ((rel.len() as f64 - 1.0) * self.config.quantile).round() as usize;
        let p = rel
            .get(idx.min(rel.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0);
        // One frame to cover the phase between arrival and playout, plus the jitter.
        let frames = 1 + (p + self.frame_us - 1) / self.frame_us + self.fec_frames();
        self.target_frames =
            (frames as usize).clamp(self.config.min_frames, self.config.max_frames);
    }

    fn level(&self) -> usize {
        match (self.next, self.packets.last_key_value()) {
            (Some(next), Some((&last, _))) if last >= next => (last - next + 1) as usize,
            (None, _) => self.packets.len(),
            _ => 0,
        }
    }

    fn seq_of(&self, ext: i64) -> u32 {
        self.origin_raw.wrapping_add((ext - EXT_ORIGIN) as u32)
    }

    /// Decides what to play for the frame period starting at `now`. Call once per period.
    pub fn pop(&mut self, now: Duration) -> Playout {
        self.update_target();
        let now_us = now.as_micros() as i64;
        let Some(next) = self.next else {
            // Buffering: start once enough frames are in to ride out the expected jitter.
            let waited_long = self
                .buffering_since
                .is_some_and(|since| now_us - since >= self.target_frames as i64 * self.frame_us);
            if (self.packets.len() >= self.target_frames || waited_long)
                && let Some((&first, _)) = self.packets.first_key_value()
            {
                self.buffering_since = None;
                self.next = Some(first);
                self.underrun_frames = 0;
                return self.pop(now);
            }
            return Playout::Silence;
        };
        let level = self.level();
        // Spare time: every packet in the last window waited at least this long, so
        // playout can move earlier by about that much without making any of them late.
        self.window_pops += 1;
        let window_pops =
            (self.config.shrink_window.as_micros() as i64 / self.frame_us).max(1) as u32;
        let mut spare_frame = false;
        if self.window_pops >= window_pops {
            // Keep the extra frame that makes FEC usable when packets are being lost.
            let keep = SHRINK_GUARD_US + self.fec_frames() * self.frame_us;
            let spare = self.window_min_wait.saturating_sub(keep);
            // A sub-frame shrink brings the next need earlier, rounded down to the
            // caller's output granularity: only what is left after that is safe.
            let fine = (spare - self.granularity_us).min(self.frame_us - self.granularity_us);
            // Dropping a whole frame (two packets in one go) is the audible kind of
            // compression: only when the spare frame has lasted several windows, so a
            // loss burst's expansion is not undone at once and then needed again.
            self.window_history[self.window_index % WINDOW_HISTORY] = self.window_min_wait;
            self.window_index += 1;
            let long_min = self.window_history.iter().copied().min().unwrap_or(0);
            if spare >= self.frame_us && long_min.saturating_sub(keep) >= self.frame_us {
                spare_frame = true;
            } else if fine >= MIN_SHRINK_US {
                self.pending_shrink_us = fine;
            }
            self.window_min_wait = i64::MAX;
            self.window_pops = 0;
        }
        if let Some((payload, arrived, copy)) = self.packets.remove(&next) {
            // A frame restored from a copy was lost on the way: it keeps the hold.
            self.note_loss(copy);
            self.count_played(copy);
            self.window_min_wait = self.window_min_wait.min(now_us - arrived);
            self.underrun_frames = 0;
            let first = AudioPacket {
                seq: self.seq_of(next),
                payload,
            };
            let surplus = level > self.target_frames + self.config.accelerate_margin;
            if (surplus || spare_frame)
                && let Some((second, _, second_copy)) = self.packets.remove(&(next + 1))
            {
                self.note_loss(second_copy);
                self.count_played(second_copy);
                self.stats.accelerated += 1;
                self.pending_shrink_us = 0;
                self.advance(next + 2);
                return Playout::Accelerate(
                    first,
                    AudioPacket {
                        seq: self.seq_of(next + 1),
                        payload: second,
                    },
                );
            }
            self.advance(next + 1);
            if self.pending_shrink_us > 0 {
                let us = std::mem::take(&mut self.pending_shrink_us);
                self.stats.accelerated += 1;
                return Playout::Shrink(first, Duration::from_micros(us as u64));
            }
            return Playout::Normal(first);
        }
        let waited = self.underrun_frames as usize;
        let first = self.packets.first_key_value().map(|(&k, _)| k);
        if let Some(first) = first
            && (self.packets.contains_key(&(next + 1))
                || self.packets.len() >= self.target_frames
                || waited >= self.target_frames
                // Already waited a period for it and a later packet has come: lost.
                || (waited >= 1 && first > next))
        {
            // The next packet is here, or enough later ones (or we waited long enough):
            // this one is lost.
            self.note_loss(true);
            self.underrun_frames = 0;
            // While waiting, `waited` periods were already filled with concealment: they
            // stand for the first missing frames, so skip that many (keeping the one just
            // before `first` for recovery from its copy). That undoes the delay the wait
            // added instead of leaving it to time compression inside speech.
            let skip = (waited as i64).min(first - next - 1).max(0);
            let lost = next + skip;
            self.advance(lost + 1);
            self.window_min_wait = 0;
            if let Some((next_payload, _, _)) = self.packets.get(&(lost + 1)) {
                self.stats.fec_recovered += 1;
                return Playout::Fec {
                    lost_seq: self.seq_of(lost),
                    next_payload: next_payload.clone(),
                };
            }
            self.stats.concealed += 1;
            return Playout::Conceal;
        }
        // The packet may just be late and the buffer runs below target: conceal without
        // advancing (this stretches the delay by a frame, NetEq's "expand"), unless the
        // stream has gone quiet for long.
        self.underrun_frames += 1;
        let idle_frames = self.config.idle_after.as_micros() as i64 / self.frame_us;
        if self.packets.is_empty() && self.underrun_frames as i64 > idle_frames {
            self.next = None;
            // Stale arrival history would keep the target inflated after a pause.
            self.delays.retain(|&(t, _)| t >= now_us);
            return Playout::Silence;
        }
        self.window_min_wait = 0;
        self.stats.concealed += 1;
        Playout::Conceal
    }

    /// Counts a frame played from its own packet or from a copy.
    fn count_played(&mut self, from_copy: bool) {
        if from_copy {
            self.stats.fec_recovered += 1;
        } else {
            self.stats.played += 1;
        }
    }

    fn advance(&mut self, next: i64) {
        self.next = Some(next);
        self.floor = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u32) -> AudioPacket {
        AudioPacket {
            seq,
            payload: seq.to_le_bytes().to_vec(),
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn jb() -> JitterBuffer {
        JitterBuffer::new(JitterConfig::new(FrameDuration::Ms20))
    }

    /// Packet 11 (carrying a copy of 10) overtakes 10; 10 itself arrives or not, before
    /// its turn either way. Returns the stats and what played in slot 10.
    fn overtaken(original_arrives: bool) -> (JitterStats, Playout) {
        let mut jb = jb();
        let mut slot10 = Playout::Silence;
        for i in 0..30u32 {
            let t = ms(u64::from(i) * 20);
            match i {
                10 => {
                    jb.push(pkt(11), t + ms(1));
                    jb.push_copy(pkt(10), t + ms(1));
                    if original_arrives {
                        jb.push(pkt(10), t + ms(3));
                    }
                }
                11 => {}
                _ => jb.push(pkt(i), t),
            }
            let p = jb.pop(t + ms(5));
            if i == 10 {
                slot10 = p;
            }
        }
        (jb.stats(), slot10)
    }

    #[test]
    fn while_copies_arrive_the_recovery_frames_are_held_before_any_loss() {
        let mut jb = jb();
        let mut targets = Vec::new();
        for i in 0..100u32 {
            // Copies two deep for the first half, then plain payloads.
            jb.set_hold(if i < 50 { 2 } else { 0 });
            jb.push(pkt(i), ms(u64::from(i) * 20));
            jb.pop(ms(u64::from(i) * 20 + 5));
            targets.push(jb.stats().target_frames);
        }
        assert_eq!(targets[1], 3, "two frames held from the start: {targets:?}");
        assert_eq!(targets[49], 3);
        assert_eq!(
            targets[99], 1,
            "plain and loss-free: none held: {targets:?}"
        );
        assert_eq!(
            jb.stats().concealed,
            0,
            "buffering waits for the held frames: nothing to stretch"
        );
    }

    #[test]
    fn a_copy_stands_in_for_a_lost_frame_and_counts_as_recovered_when_played() {
        let (s, slot10) = overtaken(false);
        assert_eq!(slot10, Playout::Normal(pkt(10)));
        assert_eq!(
            (s.fec_recovered, s.concealed, s.duplicates),
            (1, 0, 0),
            "{s:?}"
        );
        // Packet 11's early arrival reads as jitter in both runs; the loss adds the hold.
        let (reordered, _) = overtaken(true);
        assert_eq!(s.target_frames, reordered.target_frames + 1, "{s:?}");
    }

    #[test]
    fn an_original_arriving_after_its_copy_is_a_reorder_not_a_loss_or_duplicate() {
        let (s, slot10) = overtaken(true);
        assert_eq!(slot10, Playout::Normal(pkt(10)));
        assert_eq!(
            (s.fec_recovered, s.concealed, s.duplicates),
            (0, 0, 0),
            "{s:?}"
        );
        let (lost, _) = overtaken(false);
        assert!(
            s.target_frames < lost.target_frames,
            "no loss, no hold: {s:?}"
        );
    }

    #[test]
    fn in_order_stream_plays_every_packet_once_in_order() {
        let mut jb = jb();
        let mut played = Vec::new();
        for i in 0..50u32 {
            jb.push(pkt(i), ms(u64::from(i) * 20));
            match jb.pop(ms(u64::from(i) * 20 + 5)) {
                Playout::Normal(p) | Playout::Shrink(p, _) => played.push(p.seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(played, (0..50).collect::<Vec<_>>());
        assert_eq!(jb.stats().target_frames, 1);
    }

    #[test]
    fn lost_packet_is_recovered_from_next_packets_fec() {
        let mut jb = jb();
        jb.push(pkt(0), ms(0));
        assert!(matches!(jb.pop(ms(1)), Playout::Normal(_)));
        jb.push(pkt(2), ms(40));
        jb.push(pkt(3), ms(60));
        match jb.pop(ms(61)) {
            Playout::Fec {
                lost_seq,
                next_payload,
            } => {
                assert_eq!(lost_seq, 1);
                assert_eq!(next_payload, 2u32.to_le_bytes().to_vec());
            }
            other => panic!("expected FEC, got {other:?}"),
        }
        assert!(matches!(jb.pop(ms(81)), Playout::Normal(p) if p.seq == 2));
    }

    /// Plays a steady stream (one packet per 20 ms, no jitter) with the given packets lost;
    /// returns for every period what was played: `Some(seq)` for a packet (or the frame
    /// recovered from the next one), `None` for concealment or silence.
    fn steady(lost: &[u32], periods: u32) -> Vec<Option<u32>> {
        let mut jb = jb();
        (0..periods)
            .map(|i| {
                if !lost.contains(&i) {
                    jb.push(pkt(i), ms(u64::from(i) * 20));
                }
                match jb.pop(ms(u64::from(i) * 20 + 10)) {
                    Playout::Normal(p) | Playout::Shrink(p, _) => Some(p.seq),
                    Playout::Fec { lost_seq, .. } => Some(lost_seq),
                    Playout::Accelerate(_, b) => Some(b.seq),
                    Playout::Conceal | Playout::Silence => None,
                }
            })
            .collect()
    }

    #[test]
    fn a_loss_burst_does_not_leave_the_delay_longer() {
        // The first loss costs one expansion (no frame was held back yet) and adds the
        // frame that makes later single losses recoverable; a later double loss is then
        // one concealed frame plus one recovered one, with no further delay.
        let out = steady(&[20, 50, 51], 120);
        let delay = |i: usize| out[i].map(|seq| i as i64 - i64::from(seq));
        assert_eq!(delay(10), Some(0));
        assert_eq!(delay(40), Some(1), "{:?}", &out[15..45]);
        assert_eq!(out[51], None, "{:?}", &out[45..60]);
        assert_eq!(
            out[52],
            Some(51),
            "51 recovered from 52: {:?}",
            &out[45..60]
        );
        assert_eq!(delay(60), Some(1), "{:?}", &out[45..65]);
        assert_eq!(delay(119), Some(1));
    }

    #[test]
    fn after_repeated_losses_the_held_frame_outlasts_a_ten_second_loss_free_stretch() {
        // Losses at 1 s and 1.2 s, then none for 10 s: the extra frame must still be there,
        // so the loss at 11.4 s is rebuilt from the next packet instead of concealed.
        let out = steady(&[50, 60, 570], 600);
        let delay = |i: usize| out[i].map(|seq| i as i64 - i64::from(seq));
        assert_eq!(delay(560), Some(1), "{:?}", &out[550..565]);
        assert!(
            out[565..600].iter().all(Option::is_some),
            "{:?}",
            &out[565..600]
        );
        assert_eq!(delay(599), Some(1));
    }

    #[test]
    fn a_lone_loss_holds_the_extra_frame_only_briefly() {
        // One loss at 1 s: the extra frame goes again within a few seconds (the latency
        // of a clean path must not stay raised by one start-up hiccup).
        let out = steady(&[50], 600);
        let delay = |i: usize| out[i].map(|seq| i as i64 - i64::from(seq));
        assert_eq!(delay(100), Some(1), "{:?}", &out[90..105]);
        assert_eq!(delay(599), Some(0), "{:?}", &out[585..600]);
    }

    #[test]
    fn a_lone_burst_of_two_restored_from_copies_holds_the_extra_frame_only_briefly() {
        // Frames 50 and 51 lost together and both played from packet 52's copies: one
        // event, not a lossy path, so the hold lapses like a lone loss's.
        let mut jb = jb();
        let mut out = Vec::new();
        for i in 0..600u32 {
            let t = ms(u64::from(i) * 20);
            if i != 50 && i != 51 {
                jb.push(pkt(i), t);
            }
            if i == 52 {
                jb.push_copy(pkt(50), t);
                jb.push_copy(pkt(51), t);
            }
            out.push(match jb.pop(t + ms(10)) {
                Playout::Normal(p) | Playout::Shrink(p, _) => Some(p.seq),
                Playout::Accelerate(_, b) => Some(b.seq),
                _ => None,
            });
        }
        assert_eq!(jb.stats().fec_recovered, 2, "{:?}", jb.stats());
        let delay = |i: usize| out[i].map(|seq| i as i64 - i64::from(seq));
        assert_eq!(delay(599), Some(0), "{:?}", &out[585..600]);
    }

    #[test]
    fn lost_packet_without_successor_is_concealed() {
        let mut jb = jb();
        jb.push(pkt(0), ms(0));
        let _ = jb.pop(ms(1));
        jb.push(pkt(3), ms(60));
        assert_eq!(jb.pop(ms(61)), Playout::Conceal);
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let mut jb = jb();
        jb.push(pkt(0), ms(0));
        jb.push(pkt(0), ms(1));
        assert!(matches!(jb.pop(ms(2)), Playout::Normal(p) if p.seq == 0));
        jb.push(pkt(0), ms(3));
        let s = jb.stats();
        assert_eq!((s.duplicates, s.late), (1, 1));
        assert_eq!(jb.pop(ms(20)), Playout::Conceal);
    }

    #[test]
    fn reordered_packets_play_in_sequence_order() {
        let mut jb = jb();
        for (i, seq) in [1u32, 0, 3, 2, 5, 4].iter().enumerate() {
            jb.push(pkt(*seq), ms(i as u64));
        }
        let mut out = Vec::new();
        for i in 0..6 {
            if let Playout::Normal(p) = jb.pop(ms(10 + i * 20)) {
                out.push(p.seq);
            }
        }
        assert_eq!(out, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut jb = jb();
        let start = u32::MAX - 2;
        let mut out = Vec::new();
        for i in 0..6u32 {
            jb.push(pkt(start.wrapping_add(i)), ms(u64::from(i) * 20));
            if let Playout::Normal(p) | Playout::Shrink(p, _) = jb.pop(ms(u64::from(i) * 20 + 1)) {
                out.push(p.seq);
            }
        }
        assert_eq!(out, vec![u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1, 2]);
    }

    /// Feeds a stream with per-packet network delays (ms) and returns the jitter buffer
    /// after playing `frames` periods.
    fn run(delays: &[u64], frames: u64) -> (JitterBuffer, Vec<Playout>) {
        let mut arrivals: Vec<(u64, u32)> = delays
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u64 * 20_000 + d * 1000, i as u32))
            .collect();
        arrivals.sort();
        let mut jb = jb();
        let mut out = Vec::new();
        let mut a = 0;
        for f in 0..frames {
            let t = f * 20_000 + 10_000;
            while a < arrivals.len() && arrivals[a].0 <= t {
                jb.push(pkt(arrivals[a].1), Duration::from_micros(arrivals[a].0));
                a += 1;
            }
            out.push(jb.pop(Duration::from_micros(t)));
        }
        (jb, out)
    }

    #[test]
    fn target_grows_with_jitter_and_shrinks_after_the_burst() {
        // 3 s calm, 2 s of up to 100 ms jitter, then 5 s calm.
        let mut delays = Vec::new();
        let mut x: u64 = 7;
        for i in 0..500 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let burst = (150..250).contains(&i);
            delays.push(if burst { 5 + (x >> 33) % 100 } else { 5 });
        }
        let (jb_mid, _) = run(&delays[..240], 240);
        let mid_target = jb_mid.stats().target_frames;
        assert!(mid_target >= 5, "target during burst {mid_target}");
        let (jb_end, out) = run(&delays, 500);
        let s = jb_end.stats();
        assert!(
            s.target_frames <= 2,
            "target after burst {}",
            s.target_frames
        );
        assert!(s.accelerated > 0, "buffer must shrink by accelerating");
        assert!(s.level_frames <= 3, "level after burst {}", s.level_frames);
        let concealed = out.iter().filter(|p| **p == Playout::Conceal).count();
        assert!(concealed < 40, "too many concealments: {concealed}");
    }
}
