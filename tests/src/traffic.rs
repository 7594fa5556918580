//! Traffic analysis as an observer on the path would do it: cut each captured flow into
//! time windows, describe each window by what a capture shows (how many datagrams, their
//! sizes, their spacing), and train classifiers to tell labelled windows apart (talking
//! or muted, a press of push-to-talk, chat or a raised hand, stage or audience). The
//! accuracy on windows held out of training says how much the traffic gives away: 0.5 is
//! chance.

use crate::capture::Datagram;

/// What one flow showed in one window.
pub const FEATURES: [&str; 13] = [
    "datagrams/s",
    "bytes/s",
    "mean size",
    "largest size",
    "datagrams not of the usual size",
    "mean gap",
    "gap spread",
    "shortest gap",
    "longest gap",
    "gap p10",
    "gap median",
    "gap p90",
    "first arrival after the window opens",
];

/// The [`FEATURES`] of the datagrams of one flow (sorted by time) in `[start, end)`, in
/// seconds; `usual` is the size most datagrams have. The gap before the first datagram
/// in the window counts, from the flow's previous datagram.
pub fn window_features(flow: &[Datagram], start: f64, end: f64, usual: usize) -> Vec<f64> {
    let from = flow.partition_point(|d| d.at < start);
    let to = flow.partition_point(|d| d.at < end);
    let inside = &flow[from..to];
    let span = (end - start).max(1e-9);
    let n = inside.len() as f64;
    let bytes: usize = inside.iter().map(|d| d.payload.len()).sum();
    let mut gaps: Vec<f64> = flow[from.saturating_sub(1)..to]
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let pick = |q: f64| -> f64 {
        if gaps.is_empty() {
            span
        } else {
            gaps[((gaps.len() - 1) as f64 * q).round() as usize]
        }
    };
    let mean_gap = if gaps.is_empty() {
        span
    } else {
        gaps.iter().sum::<f64>() / gaps.len() as f64
    };
    let spread = if gaps.len() < 2 {
        0.0
    } else {
        (gaps.iter().map(|g| (g - mean_gap).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt()
    };
    vec![
        n / span,
        bytes as f64 / span,
        if n > 0.0 { bytes as f64 / n } else { 0.0 },
        inside.iter().map(|d| d.payload.len()).max().unwrap_or(0) as f64,
        inside.iter().filter(|d| d.payload.len() != usual).count() as f64,
        mean_gap,
        spread,
        pick(0.0),
        pick(1.0),
        pick(0.1),
        pick(0.5),
        pick(0.9),
        inside.first().map_or(span, |d| d.at - start),
    ]
}

/// The size most datagrams in `all` have.
pub fn usual_size(all: &[Datagram]) -> usize {
    let mut counts = std::collections::BTreeMap::new();
    for d in all {
        *counts.entry(d.payload.len()).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or(0, |(s, _)| s)
}

/// A small deterministic generator (xorshift): a scripted session or a synthetic flow
/// is the same on every run.
pub struct Rng(pub u64);

impl Rng {
    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fair coin.
    pub fn bit(&mut self) -> bool {
        self.unit() < 0.5
    }
}

/// One labelled observation: the features of a window (of one or several flows).
#[derive(Clone, Debug)]
pub struct Sample {
    /// What the observer sees.
    pub features: Vec<f64>,
    /// What it tries to tell.
    pub label: bool,
}

/// How well a classifier told the labels apart on windows it was not trained on.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The classifier.
    pub classifier: &'static str,
    /// Balanced accuracy over all held-out windows (the mean of the two classes'
    /// recalls): 0.5 is chance whatever the classes' sizes.
    pub accuracy: f64,
    /// What the classifier leaned on most (the feature a threshold was drawn on), for
    /// a failure message.
    pub leaned_on: Option<usize>,
}

/// Balanced accuracy of `predicted` against `truth`.
pub fn balanced_accuracy(truth: &[bool], predicted: &[bool]) -> f64 {
    let recall = |class: bool| {
        let (mut hit, mut all) = (0usize, 0usize);
        for (t, p) in truth.iter().zip(predicted) {
            if *t == class {
                all += 1;
                hit += usize::from(p == t);
            }
        }
        if all == 0 {
            0.5
        } else {
            hit as f64 / all as f64
        }
    };
    (recall(true) + recall(false)) / 2.0
}

/// A threshold on one feature: the simplest classifier that finds one leaking number.
#[derive(Clone, Copy, Debug)]
struct Stump {
    feature: usize,
    threshold: f64,
    /// Whether values above the threshold mean `true`.
    above: bool,
}

impl Stump {
    /// The feature, threshold and direction with the best balanced accuracy on `train`.
    fn fit(train: &[Sample]) -> Stump {
        let width = train.first().map_or(0, |s| s.features.len());
        let truth: Vec<bool> = train.iter().map(|s| s.label).collect();
        let mut best = (
            f64::MIN,
            Stump {
                feature: 0,
                threshold: 0.0,
                above: true,
            },
        );
        for feature in 0..width {
            let mut values: Vec<f64> = train.iter().map(|s| s.features[feature]).collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            for w in values.windows(2) {
                let threshold = (w[0] + w[1]) / 2.0;
                let said: Vec<bool> = train
                    .iter()
                    .map(|s| s.features[feature] > threshold)
                    .collect();
                let a = balanced_accuracy(&truth, &said);
                for (acc, above) in [(a, true), (1.0 - a, false)] {
                    if acc > best.0 {
                        best = (
                            acc,
                            Stump {
                                feature,
                                threshold,
                                above,
                            },
                        );
                    }
                }
            }
        }
        best.1
    }

    fn predict(&self, s: &Sample) -> bool {
        (s.features[self.feature] > self.threshold) == self.above
    }
}

/// The class whose mean is nearest, on features scaled to unit spread: a classifier that
/// adds up many small leaks.
struct Centroids {
    mean: Vec<f64>,
    scale: Vec<f64>,
    centre: [Vec<f64>; 2],
}

impl Centroids {
    fn fit(train: &[Sample]) -> Centroids {
        let width = train.first().map_or(0, |s| s.features.len());
        let n = train.len().max(1) as f64;
        let mean: Vec<f64> = (0..width)
            .map(|f| train.iter().map(|s| s.features[f]).sum::<f64>() / n)
            .collect();
        let scale: Vec<f64> = (0..width)
            .map(|f| {
                let v = train
                    .iter()
                    .map(|s| (s.features[f] - mean[f]).powi(2))
                    .sum::<f64>()
                    / n;
                if v > 0.0 { v.sqrt() } else { 1.0 }
            })
            .collect();
        let centre = [false, true].map(|class| {
            let members: Vec<&Sample> = train.iter().filter(|s| s.label == class).collect();
            let k = members.len().max(1) as f64;
            (0..width)
                .map(|f| {
                    members
                        .iter()
                        .map(|s| (s.features[f] - mean[f]) / scale[f])
                        .sum::<f64>()
                        / k
                })
                .collect()
        });
        Centroids {
            mean,
            scale,
            centre,
        }
    }

    fn predict(&self, s: &Sample) -> bool {
        let distance = |c: &Vec<f64>| -> f64 {
            c.iter()
                .enumerate()
                .map(|(f, m)| ((s.features[f] - self.mean[f]) / self.scale[f] - m).powi(2))
                .sum()
        };
        distance(&self.centre[1]) < distance(&self.centre[0])
    }
}

/// Both classifiers, each trained on all but one of `folds` contiguous blocks of
/// `samples` and tested on that block, in turn; the accuracies are over every held-out
/// window. Contiguous blocks keep a slow drift of the machine's load from passing for a
/// signal.
pub fn cross_validate(samples: &[Sample], folds: usize) -> Vec<Verdict> {
    let n = samples.len();
    let folds = folds.clamp(2, n.max(2));
    let truth: Vec<bool> = samples.iter().map(|s| s.label).collect();
    let mut stump_said = vec![false; n];
    let mut centroid_said = vec![false; n];
    let mut leaned = vec![0usize; samples.first().map_or(0, |s| s.features.len())];
    for k in 0..folds {
        let (lo, hi) = (k * n / folds, (k + 1) * n / folds);
        let train: Vec<Sample> = samples[..lo]
            .iter()
            .chain(&samples[hi..])
            .cloned()
            .collect();
        if train.is_empty() {
            continue;
        }
        let stump = Stump::fit(&train);
        if let Some(c) = leaned.get_mut(stump.feature) {
            *c += 1;
        }
        let centroids = Centroids::fit(&train);
        for i in lo..hi {
            stump_said[i] = stump.predict(&samples[i]);
            centroid_said[i] = centroids.predict(&samples[i]);
        }
    }
    let leaned_on = leaned
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .map(|(f, _)| f);
    vec![
        Verdict {
            classifier: "threshold on one feature",
            accuracy: balanced_accuracy(&truth, &stump_said),
            leaned_on,
        },
        Verdict {
            classifier: "nearest class mean",
            accuracy: balanced_accuracy(&truth, &centroid_said),
            leaned_on: None,
        },
    ]
}

/// The highest balanced accuracy that still counts as chance for `n` held-out windows:
/// four standard deviations above 0.5 (a binomial's spread is at most 0.5/√n), so a
/// room that leaks nothing fails less than once in ten thousand runs.
pub fn chance_ceiling(n: usize) -> f64 {
    0.5 + 4.0 * 0.5 / (n.max(1) as f64).sqrt()
}

/// The highest accuracies (one per classifier of [`cross_validate`]) that chance reaches
/// when the label is constant over long stretches, as stage or audience is over a whole
/// phase: windows within a phase share its machine load and the slot clock's slow drift,
/// so they are not independent, and [`chance_ceiling`] (which assumes they are) is far
/// too tight. `relabel` draws another assignment of labels that keeps the true one's
/// structure (each phase relabelled as a whole); the ceiling is the best each classifier
/// does over `rounds` such assignments (a permutation test at the phase level: a room
/// that leaks nothing beats it about once in `rounds` runs), and never under
/// [`chance_ceiling`].
pub fn relabelled_ceilings(
    samples: &[Sample],
    rounds: usize,
    mut relabel: impl FnMut() -> Vec<bool>,
) -> Vec<f64> {
    let floor = chance_ceiling(samples.len());
    let mut best = vec![floor; 2];
    let mut shuffled = samples.to_vec();
    for _ in 0..rounds {
        for (s, l) in shuffled.iter_mut().zip(relabel()) {
            s.label = l;
        }
        for (b, v) in best.iter_mut().zip(cross_validate(&shuffled, 5)) {
            *b = b.max(v.accuracy);
        }
    }
    best
}

/// `k` of `n` items chosen at random (a balanced relabelling of `n` phases, `k` = n/2).
pub fn choose(rng: &mut Rng, n: usize, k: usize) -> Vec<bool> {
    let mut left = k.min(n);
    (0..n)
        .map(|i| {
            // Each remaining item is picked with the chance that keeps the draw uniform.
            let pick = left > 0 && rng.unit() * ((n - i) as f64) < left as f64;
            left -= usize::from(pick);
            pick
        })
        .collect()
}

/// The name of feature `i` of a sample made of flows laid side by side, each flow's
/// [`FEATURES`] after the previous one's, the flows named by `flows`.
pub fn feature_name(i: usize, flows: &[&str]) -> String {
    let per = FEATURES.len();
    format!(
        "{} of {}",
        FEATURES[i % per],
        flows.get(i / per).copied().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn datagram(at: f64, size: usize) -> Datagram {
        let a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        Datagram {
            at,
            src: a,
            dst: a,
            payload: vec![0; size],
        }
    }

    /// A 50-a-second flow with up to 1 ms of random lateness, over `windows` half-second
    /// windows, where `tweak(window, label, &mut flow)` may leak the label.
    fn samples(
        seed: u64,
        windows: usize,
        tweak: impl Fn(usize, bool, &mut Vec<Datagram>),
    ) -> Vec<Sample> {
        let mut rng = Rng(seed);
        let labels: Vec<bool> = (0..windows).map(|_| rng.bit()).collect();
        let mut flow = Vec::new();
        for (w, label) in labels.iter().enumerate() {
            let mut part: Vec<Datagram> = (0..25)
                .map(|i| datagram(w as f64 * 0.5 + i as f64 * 0.02 + rng.unit() * 0.001, 189))
                .collect();
            tweak(w, *label, &mut part);
            flow.extend(part);
        }
        flow.sort_by(|a, b| a.at.total_cmp(&b.at));
        (0..windows)
            .map(|w| Sample {
                features: window_features(&flow, w as f64 * 0.5, (w + 1) as f64 * 0.5, 189),
                label: labels[w],
            })
            .collect()
    }

    fn best(v: &[Verdict]) -> f64 {
        v.iter().map(|v| v.accuracy).fold(0.0, f64::max)
    }

    #[test]
    fn a_flow_that_ignores_the_label_classifies_at_chance() {
        for seed in 1..6 {
            let s = samples(seed * 7919, 120, |_, _, _| {});
            let acc = best(&cross_validate(&s, 5));
            assert!(acc < chance_ceiling(120), "seed {seed}: {acc}");
        }
    }

    #[test]
    fn one_datagram_fewer_per_labelled_window_is_found() {
        let s = samples(42, 120, |_, label, part| {
            if label {
                part.pop();
            }
        });
        let acc = best(&cross_validate(&s, 5));
        assert!(acc > 0.95, "{acc}");
    }

    #[test]
    fn one_datagram_late_by_two_milliseconds_per_labelled_window_is_found() {
        let s = samples(43, 120, |_, label, part| {
            if label {
                part[0].at += 0.002;
            }
        });
        let acc = best(&cross_validate(&s, 5));
        assert!(acc > 0.9, "{acc}");
    }

    #[test]
    fn one_larger_datagram_per_labelled_window_is_found() {
        let s = samples(44, 120, |_, label, part| {
            if label {
                part[3].payload.resize(509, 0);
            }
        });
        let acc = best(&cross_validate(&s, 5));
        assert!(acc > 0.95, "{acc}");
    }

    /// Windows in `phases` phases of `per` windows, labelled by phase (even phases true),
    /// where each phase has a lateness of its own (machine load that changes slowly) and
    /// `tweak` may leak the label; with the relabelled ceilings of 200 phase relabellings.
    fn phased(
        seed: u64,
        phases: usize,
        per: usize,
        tweak: impl Fn(bool, &mut Vec<Datagram>),
    ) -> (f64, Vec<f64>) {
        let mut rng = Rng(seed);
        let mut flow = Vec::new();
        let mut labels = Vec::new();
        for p in 0..phases {
            let label = p % 2 == 0;
            let late = 0.0002 + rng.unit() * 0.003;
            for w in 0..per {
                let at = (p * per + w) as f64 * 0.5;
                let mut part: Vec<Datagram> = (0..25)
                    .map(|i| datagram(at + i as f64 * 0.02 + rng.unit() * late, 189))
                    .collect();
                tweak(label, &mut part);
                flow.extend(part);
                labels.push(label);
            }
        }
        flow.sort_by(|a, b| a.at.total_cmp(&b.at));
        let samples: Vec<Sample> = labels
            .iter()
            .enumerate()
            .map(|(w, l)| Sample {
                features: window_features(&flow, w as f64 * 0.5, (w + 1) as f64 * 0.5, 189),
                label: *l,
            })
            .collect();
        let acc = best(&cross_validate(&samples, 5));
        let mut pick = Rng(seed ^ 0x9e37);
        let ceilings = relabelled_ceilings(&samples, 200, || {
            choose(&mut pick, phases, phases / 2)
                .into_iter()
                .flat_map(|l| std::iter::repeat_n(l, per))
                .collect()
        });
        (acc, ceilings)
    }

    #[test]
    fn a_load_that_changes_by_phase_stays_under_the_relabelled_ceiling() {
        let mut fooled_the_independent_ceiling = false;
        for seed in 1..6 {
            let (acc, ceilings) = phased(seed * 104_729, 12, 10, |_, _| {});
            let ceiling = ceilings.iter().copied().fold(0.0, f64::max);
            assert!(acc <= ceiling, "seed {seed}: {acc} above {ceilings:?}");
            fooled_the_independent_ceiling |= acc > chance_ceiling(120);
        }
        // Why the relabelled ceiling exists: the same drift passes for a leak under the
        // ceiling that takes every window as independent.
        assert!(fooled_the_independent_ceiling);
    }

    #[test]
    fn a_leak_in_every_phase_beats_the_relabelled_ceiling() {
        let (acc, ceilings) = phased(45, 12, 10, |label, part| {
            if label {
                part[0].at += 0.004;
            }
        });
        assert!(
            ceilings.iter().all(|c| acc > *c),
            "{acc} not above {ceilings:?}"
        );
    }

    #[test]
    fn choose_picks_exactly_k_and_each_item_sometimes() {
        let mut rng = Rng(7);
        let mut seen = [0usize; 12];
        for _ in 0..200 {
            let c = choose(&mut rng, 12, 6);
            assert_eq!(c.iter().filter(|x| **x).count(), 6);
            for (s, x) in seen.iter_mut().zip(c) {
                *s += usize::from(x);
            }
        }
        assert!(seen.iter().all(|s| (60..140).contains(s)), "{seen:?}");
    }

    #[test]
    fn balanced_accuracy_is_one_half_for_a_constant_guess_whatever_the_class_sizes() {
        let truth = [true, false, false, false];
        assert_eq!(balanced_accuracy(&truth, &[false; 4]), 0.5);
        assert_eq!(balanced_accuracy(&truth, &[true, false, false, false]), 1.0);
    }
}
