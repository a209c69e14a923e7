//! The last pass over a model before it is written: anything that turned out
//! to be a secret only later in the capture is removed.

use super::super::redact::{Redactions, SecretIndex};
use super::super::{Endpoint, PathSlot, SlotKind, Tenant};

/// Removes from an endpoint what turned out to be a secret only later in the
/// capture: header values, and literal path segments (made `{secret}` slots).
pub(super) fn endpoint(e: &mut Endpoint, index: &SecretIndex, red: &mut Redactions) {
    e.headers.retain(|name, v| {
        let keep = !index.taints(v);
        if !keep {
            red.count("header", name);
        }
        keep
    });
    let mut changed = false;
    let parts: Vec<String> = e
        .path
        .split('/')
        .enumerate()
        .map(|(i, seg)| {
            if seg.starts_with('{') || !index.taints(seg) {
                return seg.to_string();
            }
            red.count("path", "secret");
            e.slots.push(PathSlot {
                segment: i,
                kind: SlotKind::Secret,
                pool: "secret".into(),
            });
            changed = true;
            "{secret}".to_string()
        })
        .collect();
    if changed {
        e.path = parts.join("/");
        e.slots.sort_by_key(|s| s.segment);
    }
}

/// Drops pool values (and renames a tenant) that are known secrets.
pub(super) fn tenant(t: &mut Tenant, i: usize, index: &SecretIndex, red: &mut Redactions) {
    for (name, pool) in &mut t.pools {
        pool.values.retain(|(v, _)| {
            let keep = !index.taints(v);
            if !keep {
                red.count("pool-value", name);
            }
            keep
        });
    }
    if index.taints(&t.name) {
        red.count("tenant-name", "secret");
        t.name = format!("tenant-{}", i + 1);
    }
}
