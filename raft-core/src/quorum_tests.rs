//! Tests for the pure quorum arithmetic: hand-written tables for the rules, and
//! property tests checking the fast implementations against brute-force definitions.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{Membership, VoteResult, majority_committed_index, majority_vote_result};
use crate::types::{Index, NodeId};

use VoteResult::{Lost, Pending, Won};

/// The committed index of an empty voter set.
const UNCONSTRAINED: u64 = u64::MAX;

fn ids(raw: &[u64]) -> BTreeSet<NodeId> {
    raw.iter().copied().map(NodeId).collect()
}

/// A `matched` function from `(node, index)` pairs; any node not listed has matched 0.
fn matched_from(pairs: &[(u64, u64)]) -> impl Fn(NodeId) -> Index + use<> {
    let map: BTreeMap<u64, u64> = pairs.iter().copied().collect();
    move |node: NodeId| Index(map.get(&node.0).copied().unwrap_or(0))
}

/// A `votes` function from `(node, granted)` pairs; any node not listed has not answered.
fn votes_from(pairs: &[(u64, bool)]) -> impl Fn(NodeId) -> Option<bool> + use<> {
    let map: BTreeMap<u64, bool> = pairs.iter().copied().collect();
    move |node: NodeId| map.get(&node.0).copied()
}

fn joint(incoming: &[u64], outgoing: &[u64], learners: &[u64]) -> Membership {
    Membership {
        voters: ids(incoming),
        outgoing_voters: ids(outgoing),
        learners: ids(learners),
    }
}

// ---------------------------------------------------------------------------------------
// Brute-force reference definitions used by the properties.
// ---------------------------------------------------------------------------------------

/// The largest `i` such that strictly more than half of `matched` is `>= i`;
/// `u64::MAX` for no voters. Candidates are 0 and every matched value.
fn brute_committed(matched: &[u64]) -> u64 {
    if matched.is_empty() {
        return UNCONSTRAINED;
    }
    std::iter::once(0)
        .chain(matched.iter().copied())
        .filter(|&candidate| {
            let reached = matched.iter().filter(|&&m| m >= candidate).count();
            reached * 2 > matched.len()
        })
        .max()
        .expect("0 is always reached by every voter")
}

/// The election outcome by enumerating every way the unanswered voters could answer:
/// Won if every completion has a strict majority of grants, Lost if none does, Pending
/// otherwise; an empty set is Won.
fn brute_vote(answers: &[Option<bool>]) -> VoteResult {
    if answers.is_empty() {
        return Won;
    }
    let granted = answers.iter().filter(|a| **a == Some(true)).count();
    let missing = answers.iter().filter(|a| a.is_none()).count();
    assert!(missing < 20, "enumeration would be too large");
    let mut any_win = false;
    let mut all_win = true;
    for completion in 0u32..(1 << missing) {
        let total = granted + completion.count_ones() as usize;
        let wins = total * 2 > answers.len();
        any_win |= wins;
        all_win &= wins;
    }
    match (all_win, any_win) {
        (true, _) => Won,
        (false, false) => Lost,
        (false, true) => Pending,
    }
}

// ---------------------------------------------------------------------------------------
// majority_committed_index
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct CommitCase {
    voters: &'static [u64],
    matched: &'static [(u64, u64)],
    want: u64,
}

/// Proves the single-majority committed index for every voter-set size 0..=7 (and the
/// stack/heap boundary at 9/10) is the index a strict majority has reached, with
/// unlisted voters counting as 0 and non-voters ignored.
#[test]
fn majority_committed_index_table() {
    let cases: &[CommitCase] = &[
        // Size 0: no constraint.
        CommitCase {
            voters: &[],
            matched: &[],
            want: UNCONSTRAINED,
        },
        CommitCase {
            voters: &[],
            matched: &[(1, 5)],
            want: UNCONSTRAINED,
        },
        // Size 1.
        CommitCase {
            voters: &[1],
            matched: &[],
            want: 0,
        },
        CommitCase {
            voters: &[1],
            matched: &[(1, 100)],
            want: 100,
        },
        CommitCase {
            voters: &[1],
            matched: &[(2, 100)],
            want: 0,
        },
        // Size 2: both voters are needed.
        CommitCase {
            voters: &[1, 2],
            matched: &[],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2],
            matched: &[(1, 100)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2],
            matched: &[(2, 100)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2],
            matched: &[(1, 100), (2, 101)],
            want: 100,
        },
        CommitCase {
            voters: &[1, 2],
            matched: &[(1, 101), (2, 100)],
            want: 100,
        },
        CommitCase {
            voters: &[1, 2],
            matched: &[(1, 7), (2, 7)],
            want: 7,
        },
        // Size 3: two voters are needed.
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, 100)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, 100), (2, 101)],
            want: 100,
        },
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, 100), (2, 101), (3, 99)],
            want: 100,
        },
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, 1), (2, 2), (3, 3)],
            want: 2,
        },
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, 3), (2, 3), (3, 1)],
            want: 3,
        },
        // Non-voters with high indexes must not count.
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, 5), (4, 100), (5, 100)],
            want: 0,
        },
        // Size 4: three voters are needed.
        CommitCase {
            voters: &[1, 2, 3, 4],
            matched: &[(1, 100), (2, 101)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2, 3, 4],
            matched: &[(1, 100), (2, 101), (3, 99)],
            want: 99,
        },
        CommitCase {
            voters: &[1, 2, 3, 4],
            matched: &[(1, 100), (2, 101), (3, 99), (4, 101)],
            want: 100,
        },
        CommitCase {
            voters: &[1, 2, 3, 4],
            matched: &[(1, 1), (2, 2), (3, 3), (4, 4)],
            want: 2,
        },
        CommitCase {
            voters: &[1, 2, 3, 4],
            matched: &[(1, 5), (2, 5), (3, 5), (4, 5)],
            want: 5,
        },
        // Size 5: three voters are needed.
        CommitCase {
            voters: &[1, 2, 3, 4, 5],
            matched: &[(1, 100), (2, 101)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5],
            matched: &[(1, 100), (2, 101), (3, 103)],
            want: 100,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5],
            matched: &[(1, 100), (2, 101), (3, 103), (4, 104)],
            want: 101,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5],
            matched: &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
            want: 3,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5],
            matched: &[(1, 5), (2, 4), (3, 3), (4, 2), (5, 1)],
            want: 3,
        },
        // Size 6: four voters are needed.
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6],
            matched: &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)],
            want: 3,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6],
            matched: &[(1, 10), (2, 10), (3, 10)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6],
            matched: &[(1, 10), (2, 10), (3, 10), (4, 10)],
            want: 10,
        },
        // Size 7: four voters are needed.
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6, 7],
            matched: &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7)],
            want: 4,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6, 7],
            matched: &[(1, 10), (2, 10), (3, 10)],
            want: 0,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6, 7],
            matched: &[(1, 10), (2, 10), (3, 10), (4, 9)],
            want: 9,
        },
        // Size 9 (largest stack path): five voters are needed.
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            matched: &[
                (1, 9),
                (2, 8),
                (3, 7),
                (4, 6),
                (5, 5),
                (6, 4),
                (7, 3),
                (8, 2),
                (9, 1),
            ],
            want: 5,
        },
        // Size 10 (smallest heap path): six voters are needed.
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            matched: &[
                (1, 10),
                (2, 9),
                (3, 8),
                (4, 7),
                (5, 6),
                (6, 5),
                (7, 4),
                (8, 3),
                (9, 2),
                (10, 1),
            ],
            want: 5,
        },
        CommitCase {
            voters: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            matched: &[(1, 10), (2, 10), (3, 10), (4, 10), (5, 10)],
            want: 0,
        },
        // Extreme index values survive unchanged.
        CommitCase {
            voters: &[1, 2, 3],
            matched: &[(1, u64::MAX), (2, u64::MAX), (3, 0)],
            want: u64::MAX,
        },
    ];
    for (number, case) in cases.iter().enumerate() {
        let got = majority_committed_index(&ids(case.voters), matched_from(case.matched));
        assert_eq!(got, Index(case.want), "case #{number}: {case:?}");
    }
}

// ---------------------------------------------------------------------------------------
// majority_vote_result
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct VoteCase {
    voters: &'static [u64],
    votes: &'static [(u64, bool)],
    want: VoteResult,
}

/// Proves the single-majority election outcome for voter-set sizes 0..=7: Won once a
/// strict majority grants, Lost once a strict majority is unreachable, Pending otherwise,
/// with the empty set always Won and non-voters' answers ignored.
#[test]
fn majority_vote_result_table() {
    const Y: bool = true;
    const N: bool = false;
    let cases: &[VoteCase] = &[
        // Size 0.
        VoteCase {
            voters: &[],
            votes: &[],
            want: Won,
        },
        VoteCase {
            voters: &[],
            votes: &[(1, N)],
            want: Won,
        },
        // Size 1.
        VoteCase {
            voters: &[1],
            votes: &[],
            want: Pending,
        },
        VoteCase {
            voters: &[1],
            votes: &[(1, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1],
            votes: &[(1, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1],
            votes: &[(2, Y)],
            want: Pending,
        },
        // Size 2: both must grant, so one refusal loses.
        VoteCase {
            voters: &[1, 2],
            votes: &[],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2],
            votes: &[(1, Y)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2],
            votes: &[(1, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2],
            votes: &[(2, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2],
            votes: &[(1, Y), (2, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2],
            votes: &[(1, Y), (2, Y)],
            want: Won,
        },
        // Size 3.
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, Y)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, N)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, Y), (2, N)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, Y), (2, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, N), (2, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, Y), (2, N), (3, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, Y), (2, N), (3, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3],
            votes: &[(1, Y), (4, Y), (5, Y)],
            want: Pending,
        },
        // Size 4: three grants are needed, so two refusals lose.
        VoteCase {
            voters: &[1, 2, 3, 4],
            votes: &[(1, N)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3, 4],
            votes: &[(1, Y), (2, Y)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3, 4],
            votes: &[(1, Y), (2, Y), (3, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1, 2, 3, 4],
            votes: &[(1, N), (2, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3, 4],
            votes: &[(1, Y), (2, Y), (3, N)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3, 4],
            votes: &[(1, Y), (2, Y), (3, N), (4, N)],
            want: Lost,
        },
        // Size 5.
        VoteCase {
            voters: &[1, 2, 3, 4, 5],
            votes: &[(1, Y), (2, Y), (3, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5],
            votes: &[(1, N), (2, N), (3, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5],
            votes: &[(1, Y), (2, Y), (3, N), (4, N)],
            want: Pending,
        },
        // Size 6: four grants are needed, so three refusals lose.
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6],
            votes: &[(1, Y), (2, Y), (3, Y)],
            want: Pending,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6],
            votes: &[(1, Y), (2, Y), (3, Y), (4, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6],
            votes: &[(1, N), (2, N), (3, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6],
            votes: &[(1, Y), (2, Y), (3, Y), (4, N), (5, N), (6, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6],
            votes: &[(1, Y), (2, Y), (3, Y), (4, N), (5, N)],
            want: Pending,
        },
        // Size 7.
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6, 7],
            votes: &[(1, Y), (2, Y), (3, Y), (4, Y)],
            want: Won,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6, 7],
            votes: &[(1, N), (2, N), (3, N), (4, N)],
            want: Lost,
        },
        VoteCase {
            voters: &[1, 2, 3, 4, 5, 6, 7],
            votes: &[(1, Y), (2, Y), (3, Y), (4, N), (5, N), (6, N)],
            want: Pending,
        },
    ];
    for (number, case) in cases.iter().enumerate() {
        let got = majority_vote_result(&ids(case.voters), votes_from(case.votes));
        assert_eq!(got, case.want, "case #{number}: {case:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Membership::committed_index
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct JointCommitCase {
    voters: &'static [u64],
    outgoing: &'static [u64],
    learners: &'static [u64],
    matched: &'static [(u64, u64)],
    want: u64,
}

/// Proves a (possibly joint) membership commits the minimum of its two halves'
/// majority indexes, whether the halves overlap, coincide or are disjoint, and that
/// learners never contribute.
#[test]
fn membership_committed_index_table() {
    let cases: &[JointCommitCase] = &[
        // Empty membership places no constraint.
        JointCommitCase {
            voters: &[],
            outgoing: &[],
            learners: &[],
            matched: &[],
            want: UNCONSTRAINED,
        },
        // Simple configuration reduces to a single majority.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[],
            matched: &[(1, 10), (2, 8), (3, 6)],
            want: 8,
        },
        // Learners far ahead do not help.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[4, 5, 6],
            matched: &[(1, 10), (4, 100), (5, 100), (6, 100)],
            want: 0,
        },
        // Identical halves behave as one.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[1, 2, 3],
            learners: &[],
            matched: &[(1, 10), (2, 8), (3, 6)],
            want: 8,
        },
        // Overlapping halves, outgoing behind: incoming 8, outgoing 6.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[2, 3, 4],
            learners: &[],
            matched: &[(1, 10), (2, 8), (3, 6), (4, 4)],
            want: 6,
        },
        // Overlapping halves, incoming behind: incoming 6, outgoing 9.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[3, 4, 5],
            learners: &[],
            matched: &[(1, 2), (2, 6), (3, 9), (4, 9), (5, 1)],
            want: 6,
        },
        // Disjoint halves, outgoing has nothing: nothing commits.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            matched: &[(1, 100), (2, 100), (3, 100)],
            want: 0,
        },
        // Disjoint halves, incoming has nothing: nothing commits.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            matched: &[(4, 100), (5, 100), (6, 100)],
            want: 0,
        },
        // Disjoint halves both progressing: incoming 100, outgoing 7.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            matched: &[(1, 100), (2, 100), (3, 100), (4, 5), (5, 7), (6, 9)],
            want: 7,
        },
        // Even-sized halves: incoming {1,2} needs both (3), outgoing of 4 needs three (5).
        JointCommitCase {
            voters: &[1, 2],
            outgoing: &[3, 4, 5, 6],
            learners: &[],
            matched: &[(1, 3), (2, 8), (3, 9), (4, 5), (5, 6), (6, 1)],
            want: 3,
        },
        // Single-node halves replacing one another.
        JointCommitCase {
            voters: &[2],
            outgoing: &[1],
            learners: &[],
            matched: &[(1, 12), (2, 5)],
            want: 5,
        },
        // Growing 1 -> 3: the new majority must include a node other than the old one.
        JointCommitCase {
            voters: &[1, 2, 3],
            outgoing: &[1],
            learners: &[],
            matched: &[(1, 20), (2, 4), (3, 0)],
            want: 4,
        },
        // Empty incoming half with a non-empty outgoing half is governed by the outgoing.
        JointCommitCase {
            voters: &[],
            outgoing: &[1, 2, 3],
            learners: &[],
            matched: &[(1, 4), (2, 5), (3, 6)],
            want: 5,
        },
    ];
    for (number, case) in cases.iter().enumerate() {
        let membership = joint(case.voters, case.outgoing, case.learners);
        let got = membership.committed_index(matched_from(case.matched));
        assert_eq!(got, Index(case.want), "case #{number}: {case:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Membership::vote_result
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct JointVoteCase {
    voters: &'static [u64],
    outgoing: &'static [u64],
    learners: &'static [u64],
    votes: &'static [(u64, bool)],
    want: VoteResult,
}

/// Proves a (possibly joint) election is Won only when both halves win, Lost as soon as
/// either half loses, Pending otherwise, and that learners' answers are ignored.
#[test]
fn membership_vote_result_table() {
    const Y: bool = true;
    const N: bool = false;
    let cases: &[JointVoteCase] = &[
        // Empty membership wins.
        JointVoteCase {
            voters: &[],
            outgoing: &[],
            learners: &[],
            votes: &[],
            want: Won,
        },
        // Simple configuration reduces to one majority.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[],
            votes: &[(1, Y), (2, Y)],
            want: Won,
        },
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[],
            votes: &[(1, Y)],
            want: Pending,
        },
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[],
            votes: &[(1, N), (3, N)],
            want: Lost,
        },
        // Learners granting do not make a quorum.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[4, 5],
            votes: &[(1, Y), (4, Y), (5, Y)],
            want: Pending,
        },
        // Disjoint halves: Won/Won.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, Y), (2, Y), (4, Y), (5, Y)],
            want: Won,
        },
        // Disjoint halves: incoming Won, outgoing Pending.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, Y), (2, Y), (4, Y)],
            want: Pending,
        },
        // Disjoint halves: incoming Pending, outgoing Won.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, Y), (4, Y), (5, Y)],
            want: Pending,
        },
        // Disjoint halves: incoming Won, outgoing Lost.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, Y), (2, Y), (3, Y), (4, N), (5, N)],
            want: Lost,
        },
        // Disjoint halves: incoming Lost, outgoing Won.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, N), (2, N), (4, Y), (5, Y), (6, Y)],
            want: Lost,
        },
        // Disjoint halves: incoming Pending, outgoing Lost.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, Y), (5, N), (6, N)],
            want: Lost,
        },
        // Disjoint halves: both Pending.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[4, 5, 6],
            learners: &[],
            votes: &[(1, Y), (2, N), (4, N)],
            want: Pending,
        },
        // Overlapping halves: shared voter 3 and voter 1 win incoming only.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[3, 4, 5],
            learners: &[],
            votes: &[(1, Y), (3, Y)],
            want: Pending,
        },
        // Overlapping halves: adding 4 wins outgoing too.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[3, 4, 5],
            learners: &[],
            votes: &[(1, Y), (3, Y), (4, Y)],
            want: Won,
        },
        // Overlapping halves: shared refusal plus one more loses outgoing.
        JointVoteCase {
            voters: &[1, 2, 3],
            outgoing: &[3, 4, 5],
            learners: &[],
            votes: &[(1, Y), (2, Y), (3, N), (4, N)],
            want: Lost,
        },
        // Even-sized halves: {1,2} needs both, so one refusal there loses overall.
        JointVoteCase {
            voters: &[1, 2],
            outgoing: &[1, 2, 3, 4],
            learners: &[],
            votes: &[(1, Y), (2, N), (3, Y), (4, Y)],
            want: Lost,
        },
        JointVoteCase {
            voters: &[1, 2],
            outgoing: &[1, 2, 3, 4],
            learners: &[],
            votes: &[(1, Y), (2, Y)],
            want: Pending,
        },
        JointVoteCase {
            voters: &[1, 2],
            outgoing: &[1, 2, 3, 4],
            learners: &[],
            votes: &[(1, Y), (2, Y), (4, Y)],
            want: Won,
        },
        // Empty incoming half with a non-empty outgoing half is governed by the outgoing.
        JointVoteCase {
            voters: &[],
            outgoing: &[1, 2, 3],
            learners: &[],
            votes: &[(1, Y)],
            want: Pending,
        },
        JointVoteCase {
            voters: &[],
            outgoing: &[1, 2, 3],
            learners: &[],
            votes: &[(1, N), (2, N)],
            want: Lost,
        },
    ];
    for (number, case) in cases.iter().enumerate() {
        let membership = joint(case.voters, case.outgoing, case.learners);
        let got = membership.vote_result(votes_from(case.votes));
        assert_eq!(got, case.want, "case #{number}: {case:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Membership predicates, members and Display
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct MemberCase {
    voters: &'static [u64],
    outgoing: &'static [u64],
    learners: &'static [u64],
    want_joint: bool,
    want_voters: &'static [u64],
    want_members: &'static [u64],
    want_display: &'static str,
}

/// Proves `is_joint`, `is_voter`, `contains`, `members` and `Display` classify every node
/// (voters of either half, learners and strangers) correctly across simple and joint
/// memberships.
#[test]
fn membership_predicates_table() {
    let cases: &[MemberCase] = &[
        MemberCase {
            voters: &[],
            outgoing: &[],
            learners: &[],
            want_joint: false,
            want_voters: &[],
            want_members: &[],
            want_display: "voters=[]",
        },
        MemberCase {
            voters: &[1],
            outgoing: &[],
            learners: &[],
            want_joint: false,
            want_voters: &[1],
            want_members: &[1],
            want_display: "voters=[1]",
        },
        MemberCase {
            voters: &[3, 1, 2],
            outgoing: &[],
            learners: &[],
            want_joint: false,
            want_voters: &[1, 2, 3],
            want_members: &[1, 2, 3],
            want_display: "voters=[1,2,3]",
        },
        MemberCase {
            voters: &[1, 2, 3],
            outgoing: &[],
            learners: &[5, 4],
            want_joint: false,
            want_voters: &[1, 2, 3],
            want_members: &[1, 2, 3, 4, 5],
            want_display: "voters=[1,2,3] learners=[4,5]",
        },
        MemberCase {
            voters: &[1, 2, 3],
            outgoing: &[2, 3, 4],
            learners: &[],
            want_joint: true,
            want_voters: &[1, 2, 3, 4],
            want_members: &[1, 2, 3, 4],
            want_display: "voters=[1,2,3] outgoing=[2,3,4]",
        },
        MemberCase {
            voters: &[4, 5],
            outgoing: &[1, 2, 3],
            learners: &[10],
            want_joint: true,
            want_voters: &[1, 2, 3, 4, 5],
            want_members: &[1, 2, 3, 4, 5, 10],
            want_display: "voters=[4,5] outgoing=[1,2,3] learners=[10]",
        },
        MemberCase {
            voters: &[],
            outgoing: &[7],
            learners: &[],
            want_joint: true,
            want_voters: &[7],
            want_members: &[7],
            want_display: "voters=[] outgoing=[7]",
        },
        MemberCase {
            voters: &[],
            outgoing: &[],
            learners: &[9],
            want_joint: false,
            want_voters: &[],
            want_members: &[9],
            want_display: "voters=[] learners=[9]",
        },
        MemberCase {
            voters: &[12, 100],
            outgoing: &[],
            learners: &[],
            want_joint: false,
            want_voters: &[12, 100],
            want_members: &[12, 100],
            want_display: "voters=[12,100]",
        },
    ];
    for (number, case) in cases.iter().enumerate() {
        let membership = joint(case.voters, case.outgoing, case.learners);
        assert_eq!(
            membership.is_joint(),
            case.want_joint,
            "is_joint, case #{number}: {case:?}"
        );
        assert_eq!(
            membership.members(),
            ids(case.want_members),
            "members, case #{number}: {case:?}"
        );
        assert_eq!(
            membership.to_string(),
            case.want_display,
            "display, case #{number}: {case:?}"
        );
        let want_voters = ids(case.want_voters);
        let want_members = ids(case.want_members);
        for node in (0..=12).chain([100, 101, u64::MAX]).map(NodeId) {
            assert_eq!(
                membership.is_voter(node),
                want_voters.contains(&node),
                "is_voter({node}), case #{number}: {case:?}"
            );
            assert_eq!(
                membership.contains(node),
                want_members.contains(&node),
                "contains({node}), case #{number}: {case:?}"
            );
        }
    }
}

/// Proves `with_voters` deduplicates and sorts its input and builds a simple membership
/// with no outgoing voters and no learners.
#[test]
fn with_voters_builds_simple_membership() {
    let membership = Membership::with_voters([3, 1, 2, 3, 1].map(NodeId));
    assert_eq!(membership.voters, ids(&[1, 2, 3]));
    assert!(membership.outgoing_voters.is_empty());
    assert!(membership.learners.is_empty());
    assert!(!membership.is_joint());
    assert_eq!(membership.to_string(), "voters=[1,2,3]");
    assert_eq!(Membership::with_voters([]), Membership::default());
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Match indexes drawn mostly from a small range (so ties and zeros are common), with
/// occasional arbitrary values including the extremes.
fn index_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..=12,
        1 => Just(0u64),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

/// Between 1 and 12 voters (covering both the stack path, <= 9, and the heap path), each
/// with a match index.
fn voter_matches() -> impl Strategy<Value = BTreeMap<u64, u64>> {
    prop::collection::btree_map(1u64..=40, index_value(), 1..=12)
}

fn voter_answers(
    size: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = BTreeMap<u64, Option<bool>>> {
    prop::collection::btree_map(1u64..=40, prop::option::of(any::<bool>()), size)
}

fn lookup(map: &BTreeMap<u64, u64>) -> impl Fn(NodeId) -> Index + '_ {
    |node: NodeId| Index(map.get(&node.0).copied().unwrap_or(0))
}

fn set_of<V>(map: &BTreeMap<u64, V>) -> BTreeSet<NodeId> {
    map.keys().copied().map(NodeId).collect()
}

/// A joint configuration over ids 1..=12 with match indexes for all twelve: incoming is
/// non-empty, outgoing may be empty (a simple configuration), and the halves may overlap.
fn joint_matches() -> impl Strategy<Value = (BTreeSet<u64>, BTreeSet<u64>, Vec<u64>)> {
    (
        prop::collection::btree_set(1u64..=12, 1..=7),
        prop::collection::btree_set(1u64..=12, 0..=7),
        prop::collection::vec(index_value(), 12),
    )
}

/// A joint configuration over ids 1..=12 with an answer (or none) for each.
fn joint_answers() -> impl Strategy<Value = (BTreeSet<u64>, BTreeSet<u64>, Vec<Option<bool>>)> {
    (
        prop::collection::btree_set(1u64..=12, 0..=7),
        prop::collection::btree_set(1u64..=12, 0..=7),
        prop::collection::vec(prop::option::of(any::<bool>()), 12),
    )
}

proptest! {
    /// Proves `majority_committed_index` equals the brute-force maximum index reached by a
    /// strict majority, for 1..=12 voters (stack and heap paths).
    #[test]
    fn committed_index_matches_brute_force(matches in voter_matches()) {
        let got = majority_committed_index(&set_of(&matches), lookup(&matches));
        let values: Vec<u64> = matches.values().copied().collect();
        prop_assert_eq!(got, Index(brute_committed(&values)));
        // The committed index is always one of the voters' own match indexes.
        prop_assert!(values.contains(&got.0));
    }

    /// Proves raising any one voter's match index never lowers the committed index.
    #[test]
    fn committed_index_is_monotone(
        matches in voter_matches(),
        pick in any::<prop::sample::Index>(),
        raise in prop_oneof![1u64..=5, any::<u64>()],
    ) {
        let voters = set_of(&matches);
        let before = majority_committed_index(&voters, lookup(&matches));
        let voter = *pick.get(&matches.keys().copied().collect::<Vec<_>>());
        let mut raised = matches.clone();
        let entry = raised.get_mut(&voter).expect("picked from the keys");
        *entry = entry.saturating_add(raise);
        let after = majority_committed_index(&voters, lookup(&raised));
        prop_assert!(after >= before, "raising n{} by {} lowered {:?} to {:?}", voter, raise, before, after);
    }

    /// Proves a membership's committed index is the minimum of its halves' brute-force
    /// values and never exceeds either half's own committed index.
    #[test]
    fn joint_committed_index_is_min_of_halves((incoming, outgoing, indexes) in joint_matches()) {
        let membership = Membership {
            voters: incoming.iter().copied().map(NodeId).collect(),
            outgoing_voters: outgoing.iter().copied().map(NodeId).collect(),
            learners: BTreeSet::new(),
        };
        let matched = |node: NodeId| Index(indexes[(node.0 - 1) as usize]);
        let got = membership.committed_index(matched);
        let half = |set: &BTreeSet<u64>| {
            brute_committed(&set.iter().map(|id| indexes[(id - 1) as usize]).collect::<Vec<_>>())
        };
        let (brute_in, brute_out) = (half(&incoming), half(&outgoing));
        prop_assert_eq!(got, Index(brute_in.min(brute_out)));
        prop_assert!(got <= majority_committed_index(&membership.voters, matched));
        prop_assert!(got <= majority_committed_index(&membership.outgoing_voters, matched));
        prop_assert!(got.0 <= brute_in && got.0 <= brute_out);
    }

    /// Proves `majority_vote_result` equals the brute-force outcome obtained by enumerating
    /// every way the unanswered voters could still answer.
    #[test]
    fn vote_result_matches_brute_force(answers in voter_answers(0..=12)) {
        let got = majority_vote_result(&set_of(&answers), |node: NodeId| {
            answers.get(&node.0).copied().flatten()
        });
        let list: Vec<Option<bool>> = answers.values().copied().collect();
        prop_assert_eq!(got, brute_vote(&list));
    }

    /// Proves a joint election is Won iff both halves won and Lost iff either half lost
    /// (checked against brute-force halves), and equals enumerating completions of the
    /// whole joint configuration.
    #[test]
    fn joint_vote_result_combines_halves((incoming, outgoing, answers) in joint_answers()) {
        let membership = Membership {
            voters: incoming.iter().copied().map(NodeId).collect(),
            outgoing_voters: outgoing.iter().copied().map(NodeId).collect(),
            learners: BTreeSet::new(),
        };
        let votes = |node: NodeId| answers[(node.0 - 1) as usize];
        let got = membership.vote_result(votes);
        let half = |set: &BTreeSet<u64>| {
            brute_vote(&set.iter().map(|id| answers[(id - 1) as usize]).collect::<Vec<_>>())
        };
        let (brute_in, brute_out) = (half(&incoming), half(&outgoing));
        prop_assert_eq!(got == Won, brute_in == Won && brute_out == Won);
        prop_assert_eq!(got == Lost, brute_in == Lost || brute_out == Lost);

        // Independent check: enumerate every completion of the unanswered voters in the
        // union; Won iff every completion wins both halves, Lost iff none does.
        let union: Vec<u64> = incoming.union(&outgoing).copied().collect();
        let unanswered: Vec<u64> =
            union.iter().copied().filter(|id| answers[(id - 1) as usize].is_none()).collect();
        let (mut any_win, mut all_win) = (false, true);
        for completion in 0u32..(1 << unanswered.len()) {
            let filled = |id: u64| match unanswered.iter().position(|&u| u == id) {
                Some(bit) => completion & (1 << bit) != 0,
                None => answers[(id - 1) as usize] == Some(true),
            };
            let half_wins = |set: &BTreeSet<u64>| {
                set.is_empty() || set.iter().filter(|&&id| filled(id)).count() * 2 > set.len()
            };
            let wins = half_wins(&incoming) && half_wins(&outgoing);
            any_win |= wins;
            all_win &= wins;
        }
        let want = match (all_win, any_win) {
            (true, _) => Won,
            (false, false) => Lost,
            (false, true) => Pending,
        };
        prop_assert_eq!(got, want);
    }
}

// Configurations that cannot work are recognised, while a joint configuration demoting an
// outgoing voter to learner is well formed (regression: it was once refused, and the
// followers dropped every append carrying it).
#[test]
fn well_formed_configurations() {
    let set = |ids: &[u64]| {
        ids.iter()
            .copied()
            .map(NodeId)
            .collect::<BTreeSet<NodeId>>()
    };
    let config = |voters: &[u64], outgoing: &[u64], learners: &[u64]| Membership {
        voters: set(voters),
        outgoing_voters: set(outgoing),
        learners: set(learners),
    };
    assert!(config(&[1, 2, 3], &[], &[4]).is_well_formed());
    assert!(config(&[1, 2, 4], &[1, 2, 3], &[3]).is_well_formed());
    assert!(!config(&[], &[], &[4]).is_well_formed());
    assert!(!config(&[], &[1, 2], &[]).is_well_formed());
    assert!(!config(&[0, 1], &[], &[]).is_well_formed());
    assert!(!config(&[1, 2], &[], &[2]).is_well_formed());
    let huge: Vec<u64> = (1..=Membership::MEMBERS_MAX as u64 + 1).collect();
    assert!(!config(&huge, &[], &[]).is_well_formed());
}
