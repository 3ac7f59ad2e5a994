//! The loop check: a cycle made only of branches, sends and trait writes would run forever
//! within one event, so it is refused. Waits break cycles (a loop through a wait advances the
//! clock on every turn and is a legitimate "remind every day" journey).

use super::def::{Step, Target};
use super::JourneyError;

/// Refuses the first wait-free cycle found, naming a step on it.
pub(super) fn check_no_wait_free_cycle(steps: &[Step]) -> Result<(), JourneyError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; steps.len()];
    for start in 0..steps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (step, index of the next successor to look at).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (at, ref mut next)) = stack.last_mut() {
            let targets = steps[at].kind.immediate_targets();
            if *next >= targets.len() {
                mark[at] = Mark::Done;
                stack.pop();
                continue;
            }
            let t = targets[*next];
            *next += 1;
            let Target::Step(to) = t else { continue };
            match mark[to] {
                Mark::Done => {}
                Mark::New => {
                    mark[to] = Mark::OnPath;
                    stack.push((to, 0));
                }
                Mark::OnPath => {
                    let from = stack.iter().position(|&(s, _)| s == to).unwrap_or(0);
                    let mut ids: Vec<&str> = stack[from..]
                        .iter()
                        .map(|&(s, _)| steps[s].id.as_str())
                        .collect();
                    ids.push(&steps[to].id);
                    return Err(JourneyError::new(
                        format!("/steps/{to}"),
                        format!(
                            "the steps {} form a loop without a wait or wait_for step, \
                             which would never stop",
                            ids.join(" → ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
