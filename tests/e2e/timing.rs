//! End-to-end tests whose bound is a time on real daemons: a 12-node partition is one ring
//! within 10 s of the heal (cut settled, or cut young: then each side is one ring within 30 s
//! of the cut), and offline private messages arrive within 10 s of their
//! recipient's return (issue 37). A binary of their own: cargo runs test binaries one after
//! another, so these do not share the machine with the ring suite's forty-odd clusters, whose
//! load alone could stretch a 10 s bound.

mod support;

#[path = "ring/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "ring/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "ring/offline.rs"]
mod offline;
#[path = "ring/partition.rs"]
mod partition;
