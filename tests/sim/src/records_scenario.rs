//! The records scenario: a settled ring, `R` signed records put by random members (each the
//! owner's node, which renews them), then — as asked — nothing, a crash of a fraction of the
//! nodes at once, churn, or a partition in which the same names are claimed on both sides;
//! and, if asked, held names each attacked by a lying holder with a backdated claim.
//! Every record is checked against the true holders (the `k` live members from its location
//! on) and read back through the overlay from random members.

use std::collections::BTreeMap;
use std::time::Duration;

use chat_overlay::records::{Kind, Record, RecordError, RecordsEvent, Value};
use chat_overlay::sim::Sim;
use ed25519_dalek::SigningKey;
use rand::Rng;

use crate::report::Report;
use crate::scenario::{Params, settle};

/// Lifetime of the records (renewed by their owners' nodes every renewal period).
const TTL_MS: u64 = 3_600_000;

/// One record of the run: the version its owner put and the host that put it.
struct Put {
    record: Record,
    owner_host: u32,
    ok: bool,
}

struct Run {
    puts: Vec<Put>,
    next_token: u64,
    k: usize,
}

fn wall(sim: &Sim) -> u64 {
    sim.cfg.chord.records.wall_ms(sim.now())
}

fn signer(sim: &mut Sim) -> SigningKey {
    let mut seed = [0u8; 32];
    sim.rng().fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// A profile record of a fresh key, signed now.
fn profile(sim: &mut Sim) -> Record {
    let k = signer(sim);
    let now = wall(sim);
    let mut value = vec![0u8; 64];
    sim.rng().fill(&mut value[..]);
    Record::sign(
        Kind::Profile,
        k.verifying_key().to_bytes().to_vec(),
        Value::Data(value),
        &k,
        1,
        now,
        now + TTL_MS,
    )
}

/// A claim of `name` by a fresh key, signed now.
fn claim(sim: &mut Sim, name: &str) -> Record {
    let k = signer(sim);
    let now = wall(sim);
    Record::sign(
        Kind::Nick,
        name.as_bytes().to_vec(),
        Value::Data(b"profile".to_vec()),
        &k,
        1,
        now,
        now + TTL_MS,
    )
}

/// Puts `records` from random members (or the given hosts) spread over `spread`, and waits for
/// every answer; returns the results in order.
fn put_all(
    sim: &mut Sim,
    run: &mut Run,
    records: Vec<(Record, Option<u32>)>,
    spread: Duration,
) -> Vec<Result<u8, RecordError>> {
    let start = sim.now();
    let n = records.len().max(1);
    let first = run.next_token;
    let mut tokens = Vec::with_capacity(records.len());
    let mut hosts = Vec::with_capacity(records.len());
    for (i, (r, host)) in records.iter().enumerate() {
        let at = start + spread.mul_f64(i as f64 / n as f64);
        sim.run_until(at);
        let Some(h) = host.or_else(|| sim.random_member()) else {
            break;
        };
        let t = run.next_token;
        run.next_token += 1;
        sim.put_record(h, t, r.clone(), true);
        tokens.push(t);
        hosts.push(h);
    }
    let results = wait_results(sim, first, tokens.len(), |e| match e {
        RecordsEvent::PutDone { token, result } => Some((*token, result.clone())),
        _ => None,
    });
    for ((r, _), (h, res)) in records.into_iter().zip(hosts.iter().zip(&results)) {
        run.puts.push(Put {
            record: r,
            owner_host: *h,
            ok: res.is_ok(),
        });
    }
    results
}

/// Waits (at most two lookup timeouts) for the answers to tokens `first..first + count`;
/// a missing answer counts as unavailable.
fn wait_results<T: Clone>(
    sim: &mut Sim,
    first: u64,
    count: usize,
    pick: impl Fn(&RecordsEvent) -> Option<(u64, Result<T, RecordError>)>,
) -> Vec<Result<T, RecordError>> {
    let mut out: Vec<Option<Result<T, RecordError>>> = vec![None; count];
    let mut got = 0;
    let deadline = sim.now() + sim.cfg.chord.ring.lookup_timeout * 2 + Duration::from_secs(30);
    loop {
        // Keep what is not an answer (conflicts, lost claims) for the scenario to count.
        sim.record_events.retain(|(_, e)| match pick(e) {
            Some((t, r)) if t >= first && ((t - first) as usize) < count => {
                if out[(t - first) as usize].is_none() {
                    out[(t - first) as usize] = Some(r);
                    got += 1;
                }
                false
            }
            Some(_) => false,
            None => true,
        });
        if got == count || sim.now() >= deadline {
            break;
        }
        sim.run_for(Duration::from_millis(250));
    }
    out.into_iter()
        .map(|r| r.unwrap_or(Err(RecordError::Unavailable)))
        .collect()
}

/// Waits for the answers to the gets with tokens `first..first + count`.
fn wait_gets(sim: &mut Sim, first: u64, count: usize) -> Vec<Result<Vec<Record>, RecordError>> {
    wait_results(sim, first, count, |e| match e {
        RecordsEvent::GetDone { token, result } => Some((*token, result.clone())),
        _ => None,
    })
}

/// Whether a read returned exactly `want`.
fn read_as(res: &Result<Vec<Record>, RecordError>, want: &Record) -> bool {
    matches!(res, Ok(v) if v.len() == 1 && v[0] == *want)
}

/// Copies of each record's put version on its true holders: (min, mean, records with none).
fn replicas(sim: &Sim, run: &Run, which: impl Fn(&Put) -> bool) -> (usize, f64, usize) {
    let mut min = usize::MAX;
    let mut sum = 0usize;
    let mut n = 0usize;
    let mut none = 0;
    for p in run.puts.iter().filter(|p| p.ok && which(p)) {
        let h = p.record.hash();
        let c = sim
            .true_holders(&p.record.location(), run.k)
            .iter()
            .filter(|id| {
                sim.node(id)
                    .is_some_and(|node| node.records().store().contains(&h))
            })
            .count();
        min = min.min(c);
        sum += c;
        n += 1;
        if c == 0 {
            none += 1;
        }
    }
    if n == 0 {
        return (0, 0.0, 0);
    }
    (min, sum as f64 / n as f64, none)
}

/// Reads `sample` of the accepted records (all if fewer) from random members over `spread`;
/// returns the fraction that came back exactly as put.
fn read_back(
    sim: &mut Sim,
    run: &mut Run,
    sample: usize,
    spread: Duration,
    which: impl Fn(&Put) -> bool,
) -> (usize, f64) {
    let candidates: Vec<usize> = (0..run.puts.len())
        .filter(|i| run.puts[*i].ok && which(&run.puts[*i]))
        .collect();
    if candidates.is_empty() {
        return (0, 1.0);
    }
    let chosen: Vec<usize> = if candidates.len() <= sample {
        candidates
    } else {
        (0..sample)
            .map(|_| candidates[sim.rng().random_range(0..candidates.len())])
            .collect()
    };
    let first = run.next_token;
    let start = sim.now();
    let n = chosen.len();
    for (j, i) in chosen.iter().enumerate() {
        sim.run_until(start + spread.mul_f64(j as f64 / n as f64));
        let Some(h) = sim.random_member() else { break };
        let r = &run.puts[*i].record;
        let (kind, key) = (r.kind, r.key.clone());
        sim.get_record(h, run.next_token, kind, key);
        run.next_token += 1;
    }
    let results = wait_gets(sim, first, n);
    let ok = chosen
        .iter()
        .zip(&results)
        .filter(|(i, res)| read_as(res, &run.puts[**i].record))
        .count();
    (n, ok as f64 / n as f64)
}

/// Runs the records scenario on a settled ring and fills the report.
pub fn run(sim: &mut Sim, p: &Params, rep: &mut Report) {
    let k = sim.cfg.chord.records.replicas;
    let mut run = Run {
        puts: Vec::new(),
        next_token: 0,
        k,
    };
    let nodes = sim.members().len();
    // Puts: spread so that no origin exceeds its put rate.
    let spread = Duration::from_secs_f64((p.records as f64 / nodes.max(1) as f64).max(10.0));
    let records: Vec<(Record, Option<u32>)> =
        (0..p.records).map(|_| (profile(sim), None)).collect();
    let msgs0 = sim.net.records_messages;
    let t0 = sim.now();
    let results = put_all(sim, &mut run, records, spread);
    let put_ok = results.iter().filter(|r| r.is_ok()).count();
    rep.put("records", p.records);
    rep.put("puts_ok", put_ok);
    rep.put("put_seconds", sim.now().since(t0).as_secs_f64());
    sim.run_for(sim.cfg.chord.records.sync_interval * 2);
    let (min, mean, _) = replicas(sim, &run, |_| true);
    rep.put("replicas_min", min);
    rep.put("replicas_mean", mean);
    // Maintenance traffic of a quiet minute (sync, renewals).
    let quiet = Duration::from_secs(60);
    let m0 = sim.net.records_messages;
    sim.run_for(quiet);
    let per_node = (sim.net.records_messages - m0) as f64 / nodes as f64 / quiet.as_secs_f64();
    rep.put("record_messages_per_node_per_second", per_node);
    rep.put(
        "record_messages_put_phase",
        m0.saturating_sub(msgs0) as f64 / p.records.max(1) as f64,
    );
    let (reads, frac) = read_back(sim, &mut run, p.reads, Duration::from_secs(10), |_| true);
    rep.put("reads", reads);
    rep.put("readable_fraction", frac);
    if p.liars > 0 {
        liars(sim, p, rep, &mut run);
    }
    if p.partition_duration > Duration::ZERO && p.claims > 0 {
        partition(sim, p, rep, &mut run);
    } else if p.churn_duration > Duration::ZERO {
        churn(sim, p, rep, &mut run);
    } else if p.crash_fraction > 0.0 {
        crash(sim, p, rep, &mut run);
    }
    // Every run reports the same keys: zero conflicts, no repair where nothing was disturbed.
    for key in ["conflicts", "conflicts_converged"] {
        if !rep.extra.contains_key(key) {
            rep.put(key, 0);
        }
    }
    if !rep.extra.contains_key("repair_seconds") {
        rep.put("repair_seconds", Option::<f64>::None);
    }
}

fn crash(sim: &mut Sim, p: &Params, rep: &mut Report, run: &mut Run) {
    let live: Vec<u32> = (0..sim.hosts.len() as u32)
        .filter(|i| sim.is_up(*i))
        .collect();
    let kill = ((live.len() as f64) * p.crash_fraction).round() as usize;
    let mut order = live;
    for i in (1..order.len()).rev() {
        let j = sim.rng().random_range(0..=i);
        order.swap(i, j);
    }
    for h in order.iter().take(kill) {
        sim.crash(*h);
    }
    rep.put("crashed", kill);
    // Records with no live copy left (their every holder died).
    let lost: Vec<bool> = run
        .puts
        .iter()
        .map(|p| {
            let h = p.record.hash();
            p.ok && !sim.members().iter().any(|id| {
                sim.node(id)
                    .is_some_and(|n| n.records().store().contains(&h))
            })
        })
        .collect();
    let lost_n = lost.iter().filter(|l| **l).count();
    rep.put("records_lost_all_replicas", lost_n);
    rep.put("readable_bound", 1.0 - p.crash_fraction.powi(run.k as i32));
    let crashed_at = sim.now();
    let m0 = sim.net.records_messages;
    let mut repaired = None;
    let idx: BTreeMap<Vec<u8>, bool> = run
        .puts
        .iter()
        .zip(&lost)
        .map(|(p, l)| (p.record.key.clone(), *l))
        .collect();
    while sim.now().since(crashed_at) < p.settle_max {
        sim.run_for(Duration::from_secs(1));
        let (min, _, _) = replicas(sim, run, |p| !idx[&p.record.key]);
        if min >= run.k {
            repaired = Some(sim.now().since(crashed_at).as_secs_f64());
            break;
        }
    }
    let window = sim.now().since(crashed_at).as_secs_f64().max(1.0);
    rep.put("repair_seconds", repaired);
    rep.put(
        "repair_messages_per_node_per_second",
        (sim.net.records_messages - m0) as f64 / sim.members().len().max(1) as f64 / window,
    );
    let (min, mean, _) = replicas(sim, run, |p| !idx[&p.record.key]);
    rep.put("replicas_min_after_repair", min);
    rep.put("replicas_mean_after_repair", mean);
    let (_, frac) = read_back(sim, run, p.reads, Duration::from_secs(10), |_| true);
    rep.put("readable_fraction_after_repair", frac);
    rep.put("readable_fraction", frac);
    // One renewal period later, every record whose owner's node survived is back.
    settle(sim, p.settle_max);
    sim.run_for(sim.cfg.chord.records.renew_interval.mul_f64(1.3) + Duration::from_secs(10));
    let alive: Vec<bool> = run.puts.iter().map(|x| sim.is_up(x.owner_host)).collect();
    let keys: BTreeMap<Vec<u8>, bool> = run
        .puts
        .iter()
        .zip(&alive)
        .map(|(x, a)| (x.record.key.clone(), *a))
        .collect();
    let (_, frac) = read_back(sim, run, p.reads, Duration::from_secs(10), |x| {
        keys[&x.record.key]
    });
    rep.put("readable_fraction_owner_alive_after_renewal", frac);
    let (min, mean, _) = replicas(sim, run, |x| keys[&x.record.key]);
    rep.put("replicas_min_owner_alive_after_renewal", min);
    rep.put("replicas_mean_owner_alive_after_renewal", mean);
}

fn churn(sim: &mut Sim, p: &Params, rep: &mut Report, run: &mut Run) {
    let n = p.nodes as f64;
    let rate = p.churn_rate * n / 60.0;
    let tick = Duration::from_millis(100);
    let per_tick = (rate * tick.as_secs_f64()).min(1.0);
    let reads_per_tick = 2;
    let (mut joins, mut leaves, mut crashes) = (0, 0, 0);
    let ok: Vec<usize> = (0..run.puts.len()).filter(|i| run.puts[*i].ok).collect();
    let first = run.next_token;
    let mut asked: Vec<usize> = Vec::new();
    let mut readers: Vec<u32> = Vec::new();
    let m0 = sim.net.records_messages;
    let start = sim.now();
    let end = start + p.churn_duration;
    while sim.now() < end && !ok.is_empty() {
        if crate::scenario::maybe_join(sim, per_tick) {
            joins += 1;
        }
        if sim.rng().random_bool(per_tick)
            && let Some(i) = sim.random_member()
        {
            sim.leave(i);
            leaves += 1;
        }
        if sim.rng().random_bool(per_tick)
            && let Some(i) = sim.random_member()
        {
            sim.crash(i);
            crashes += 1;
        }
        for _ in 0..reads_per_tick {
            let i = ok[sim.rng().random_range(0..ok.len())];
            let Some(h) = sim.random_member() else { break };
            let r = &run.puts[i].record;
            let (kind, key) = (r.kind, r.key.clone());
            sim.get_record(h, run.next_token, kind, key);
            run.next_token += 1;
            asked.push(i);
            readers.push(h);
        }
        sim.run_for(tick);
    }
    let window = sim.now().since(start).as_secs_f64().max(1.0);
    let msgs = sim.net.records_messages - m0;
    let results = wait_gets(sim, first, asked.len());
    // A read whose reader left or crashed before the answer counts as failed too.
    let good = asked
        .iter()
        .zip(&results)
        .filter(|(i, r)| read_as(r, &run.puts[**i].record))
        .count();
    rep.put("churn_joins", joins);
    rep.put("churn_leaves", leaves);
    rep.put("churn_crashes", crashes);
    rep.put("churn_reads", asked.len());
    rep.put("churn_reads_ok", good);
    let reader_gone = asked
        .iter()
        .zip(&results)
        .zip(&readers)
        .filter(|((i, r), h)| !read_as(r, &run.puts[**i].record) && !sim.is_up(**h))
        .count();
    rep.put("churn_reads_failed_reader_gone", reader_gone);
    rep.put(
        "churn_read_success",
        good as f64 / asked.len().max(1) as f64,
    );
    rep.put(
        "record_messages_per_node_per_second_churn",
        msgs as f64 / sim.members().len().max(1) as f64 / window,
    );
    settle(sim, p.settle_max);
    sim.run_for(sim.cfg.chord.records.sync_interval * 4);
    let (min, mean, none) = replicas(sim, run, |_| true);
    rep.put("replicas_min", min);
    rep.put("replicas_mean", mean);
    rep.put("records_without_copy_after_churn", none);
    let (_, frac) = read_back(sim, run, p.reads, Duration::from_secs(10), |_| true);
    rep.put("readable_fraction", frac);
}

fn partition(sim: &mut Sim, p: &Params, rep: &mut Report, run: &mut Run) {
    let groups: Vec<u8> = (0..sim.hosts.len())
        .map(|_| sim.rng().random_range(0..2u8))
        .collect();
    sim.partition(&groups);
    sim.run_for(p.partition_duration / 2);
    let side = |sim: &mut Sim, g: u8| loop {
        let h = sim.random_member().expect("members");
        if sim.hosts[h as usize].group == g {
            break h;
        }
    };
    let mut claims = Vec::new();
    for c in 0..p.claims {
        let name = format!("name{c}");
        let a = claim(sim, &name);
        let ha = side(sim, 0);
        claims.push((a, Some(ha)));
        let b = claim(sim, &name);
        let hb = side(sim, 1);
        claims.push((b, Some(hb)));
    }
    let results = put_all(sim, run, claims, Duration::from_secs(5));
    sim.run_for(p.partition_duration / 2);
    sim.heal();
    let healed = sim.now();
    // Both sides granted the name: a conflict the heal must settle.
    let first = run.puts.len() - results.len();
    let pairs: Vec<(Record, Record)> = (0..p.claims)
        .filter(|c| results[2 * c].is_ok() && results[2 * c + 1].is_ok())
        .map(|c| {
            (
                run.puts[first + 2 * c].record.clone(),
                run.puts[first + 2 * c + 1].record.clone(),
            )
        })
        .collect();
    rep.put(
        "claims_refused",
        results.iter().filter(|r| r.is_err()).count(),
    );
    rep.put("conflicts", pairs.len());
    // The claim every true holder keeps and no member keeps the other of, if any: the holders'
    // election (`policy::elect`) decides, not the claims' own fields.
    let settled = |sim: &Sim, a: &Record, b: &Record| -> Option<Record> {
        let holders = sim.true_holders(&a.location(), run.k);
        [(a, b), (b, a)].into_iter().find_map(|(w, l)| {
            let (wh, lh) = (w.hash(), l.hash());
            let kept = holders.iter().all(|id| {
                sim.node(id)
                    .is_some_and(|n| n.records().store().contains(&wh))
            });
            let gone = sim.members().iter().all(|id| {
                sim.node(id)
                    .is_none_or(|n| !n.records().store().contains(&lh))
            });
            (kept && gone).then(|| w.clone())
        })
    };
    let converged = |sim: &Sim| -> usize {
        pairs
            .iter()
            .filter(|(a, b)| settled(sim, a, b).is_some())
            .count()
    };
    let mut t = None;
    while sim.now().since(healed) < p.settle_max {
        sim.run_for(Duration::from_secs(1));
        if converged(sim) == pairs.len() && oracle_ok(sim) {
            t = Some(sim.now().since(healed).as_secs_f64());
            break;
        }
    }
    let n_conv = converged(sim);
    rep.put("conflicts_converged", n_conv);
    rep.put("converge_seconds_after_heal", t);
    rep.put(
        "converge_sync_rounds",
        t.map(|s| s / sim.cfg.chord.records.sync_interval.as_secs_f64()),
    );
    // Reads from random members agree with the holders.
    let winners: Vec<Record> = pairs
        .iter()
        .filter_map(|(a, b)| settled(sim, a, b))
        .collect();
    let first_t = run.next_token;
    for w in &winners {
        let Some(h) = sim.random_member() else { break };
        sim.get_record(h, run.next_token, w.kind, w.key.clone());
        run.next_token += 1;
    }
    let got = wait_gets(sim, first_t, winners.len());
    let agree = winners
        .iter()
        .zip(&got)
        .filter(|(w, g)| read_as(g, w))
        .count();
    rep.put("claim_reads_agree", agree);
    // The losers' nodes learn at their next renewal.
    sim.run_for(sim.cfg.chord.records.renew_interval.mul_f64(1.3));
    let told = sim
        .record_events
        .iter()
        .filter(|(_, e)| matches!(e, RecordsEvent::Lost { .. }))
        .count();
    rep.put("losers_told", told);
}

/// Held names under attack: `p.liars` names are claimed; then one true holder of each (chosen
/// at random) becomes a modified node that keeps a claim of the name by its own key, backdated
/// to `created = 1`, planted in its store — so it answers reads with it and pushes it to the
/// other holders — and also puts it. Reports how many honest true holders end with a forged
/// claim and how many reads from honest members return one (both must be 0).
fn liars(sim: &mut Sim, p: &Params, rep: &mut Report, run: &mut Run) {
    let names: Vec<(Record, Option<u32>)> = (0..p.liars)
        .map(|i| (claim(sim, &format!("held{i}")), None))
        .collect();
    let first = run.puts.len();
    let results = put_all(sim, run, names, Duration::from_secs(5));
    sim.run_for(sim.cfg.chord.records.sync_interval * 2);
    let mut attacks: Vec<(Record, Record, u32)> = Vec::new();
    for (i, res) in results.iter().enumerate() {
        if res.is_err() {
            continue;
        }
        let real = run.puts[first + i].record.clone();
        let holders = sim.true_holders(&real.location(), run.k);
        let pick = sim.rng().random_range(0..holders.len().max(1));
        let Some(liar) = holders.get(pick).and_then(|id| sim.host_of(id)) else {
            continue;
        };
        let k = signer(sim);
        let forged = Record::sign(
            Kind::Nick,
            real.key.clone(),
            Value::Data(b"profile".to_vec()),
            &k,
            1,
            1,
            wall(sim) + TTL_MS,
        );
        attacks.push((real, forged, liar));
    }
    let liar_hosts: std::collections::BTreeSet<u32> = attacks.iter().map(|a| a.2).collect();
    let plant = |sim: &mut Sim| {
        for (_, forged, liar) in &attacks {
            sim.plant_record(*liar, forged.clone());
        }
    };
    for (_, forged, liar) in &attacks {
        sim.put_record(*liar, run.next_token, forged.clone(), true);
        run.next_token += 1;
    }
    // Four sync periods with the liars re-planting every half second.
    let end = sim.now() + sim.cfg.chord.records.sync_interval * 4;
    while sim.now() < end {
        plant(sim);
        sim.run_for(Duration::from_millis(500));
    }
    let forged_held = attacks
        .iter()
        .map(|(real, forged, liar)| {
            let h = forged.hash();
            sim.true_holders(&real.location(), run.k)
                .iter()
                .filter(|id| sim.host_of(id) != Some(*liar))
                .filter(|id| {
                    sim.node(id)
                        .is_some_and(|n| n.records().store().contains(&h))
                })
                .count()
        })
        .sum::<usize>();
    // Reads from honest members while the liars keep lying.
    let first_t = run.next_token;
    let mut asked = 0;
    for (real, _, _) in &attacks {
        let reader = loop {
            let h = sim.random_member().expect("members");
            if !liar_hosts.contains(&h) {
                break h;
            }
        };
        sim.get_record(reader, run.next_token, real.kind, real.key.clone());
        run.next_token += 1;
        asked += 1;
    }
    let end = sim.now() + Duration::from_secs(10);
    while sim.now() < end {
        plant(sim);
        sim.run_for(Duration::from_millis(500));
    }
    let got = wait_gets(sim, first_t, asked);
    let forged_reads = attacks
        .iter()
        .zip(&got)
        .filter(|((_, forged, _), g)| read_as(g, forged))
        .count();
    let real_reads = attacks
        .iter()
        .zip(&got)
        .filter(|((real, _, _), g)| read_as(g, real))
        .count();
    rep.put("attacked_names", attacks.len());
    rep.put("forged_claims_on_honest_holders", forged_held);
    rep.put("forged_claim_reads", forged_reads);
    rep.put("attacked_name_reads_real", real_reads);
}

fn oracle_ok(sim: &Sim) -> bool {
    chat_overlay::sim::oracle::check(sim).ring_correct
}
