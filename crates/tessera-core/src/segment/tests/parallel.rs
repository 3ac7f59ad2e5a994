//! Batch evaluation on several threads: with enough profiles and events that the work is
//! really split (the streams of the property tests are far below that threshold), two
//! threads must give what one thread and the reference give, for members, backfilled
//! computed values and the timers scheduled from the batch scan of window edges.

use super::harness::expect;
use super::{registry, DAY};
use crate::audience::reference::{EventRecord, ProfileData};
use crate::segment::Segmenter;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// More than the batch evaluator's threshold for splitting work.
const PROFILES: u32 = 70_000;
const T0: i64 = 19_675 * DAY;

#[test]
fn two_threads_agree_with_one_and_with_the_reference() {
    let reg = registry(
        &[("spend", r#"sum price of "Viewed" within 7 days"#)],
        &[
            (
                "jeans_fans",
                r#"performed "Viewed" where category = "jeans" at least 2 times within 10 days"#,
            ),
            (
                "de_cheap",
                r#"country = "DE" and not performed "Viewed" where price > 3"#,
            ),
            ("spenders", "spend > 5 or in audience \"jeans_fans\""),
        ],
    );
    // Of every ten slots, the last five are merged into the first of them; live slots have
    // a country.
    let live_of = |slot: u32| match slot % 10 {
        0..5 => slot,
        r => slot - r + 5,
    };
    let mut data: Vec<ProfileData> = vec![ProfileData::default(); PROFILES as usize];
    let mut segs: Vec<Segmenter> = (0..2).map(|_| Segmenter::new()).collect();
    for slot in 0..PROFILES {
        let category = ["jeans", "shirts", "shoes"][slot as usize % 3];
        let props = json!({"category": category, "price": slot % 7});
        let ts = T0 - i64::from(slot % 20) * DAY;
        let live = live_of(slot);
        data[live as usize].events.push(EventRecord {
            name: "Viewed".into(),
            timestamp_ms: ts,
            properties: props.clone(),
        });
        for seg in &mut segs {
            seg.register(slot, i64::from(slot) + 1, live);
            seg.load_event(slot, "Viewed", ts, Some(&props));
        }
    }
    for slot in (0..PROFILES).filter(|&s| live_of(s) == s) {
        let country = json!(if slot % 4 < 2 { "DE" } else { "FR" });
        for seg in &mut segs {
            seg.load_trait(slot, "country", Some(&country));
        }
        data[slot as usize]
            .traits
            .insert("country".into(), country.clone());
    }
    for (threads, seg) in segs.iter_mut().enumerate() {
        seg.load_clock(T0);
        seg.set_registry(reg.clone(), threads + 1);
    }
    for now in [T0, T0 + 3 * DAY + 1, T0 + 9 * DAY] {
        for seg in &mut segs {
            seg.advance(now);
        }
        let reg = segs[0].registry();
        let mut want: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); reg.audiences.len()];
        for slot in (0..PROFILES).filter(|&s| live_of(s) == s) {
            let e = expect(reg, &data[slot as usize], now);
            for (i, inside) in e.inside.iter().enumerate() {
                if *inside {
                    want[i].insert(slot);
                }
            }
            for seg in &segs {
                let got: Value = seg.computed_values(slot)["spend"].clone();
                assert_eq!(got, e.computed["spend"], "slot {slot} at {now}");
            }
        }
        for (i, a) in reg.audiences.iter().enumerate() {
            assert!(now > T0 || !want[i].is_empty(), "{} has no members", a.name);
            for (threads, seg) in segs.iter().enumerate() {
                let members: BTreeSet<u32> = seg.members(i).iter().collect();
                assert!(
                    members == want[i],
                    "{} kept on {} threads",
                    a.name,
                    threads + 1
                );
                for t in [1, 2] {
                    let batch: BTreeSet<u32> = seg.preview(&a.def, t).iter().collect();
                    assert!(batch == want[i], "{} on {t} threads at {now}", a.name);
                }
            }
        }
    }
}
