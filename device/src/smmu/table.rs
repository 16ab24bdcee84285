//! The ADSP's SMMU as a virtio-iommu sees it: domains, the endpoints attached to them, and each
//! domain's IOVA → guest-physical mappings (virtio 1.2 §5.13.6). Translation is what the DSP
//! uses for every load and store; a miss is an SMMU fault, counted and reported, never a crash.

use std::collections::{BTreeMap, BTreeSet};

use super::wire::Status;

/// Access rights of a mapping (VIRTIO_IOMMU_MAP_F_*).
pub const MAP_F_READ: u32 = 1;
/// Write access.
pub const MAP_F_WRITE: u32 = 2;
/// Device memory (not used by the offload driver; accepted and recorded).
pub const MAP_F_MMIO: u32 = 4;
const MAP_F_ALL: u32 = MAP_F_READ | MAP_F_WRITE | MAP_F_MMIO;

/// Most mappings a domain may hold; more is answered with NOMEM (the guest is untrusted).
pub const MAX_MAPPINGS_PER_DOMAIN: usize = 1 << 16;
/// Most domains; more is answered with NOMEM.
pub const MAX_DOMAINS: usize = 1 << 12;
/// Smallest page the device supports (page_size_mask has bits 12 and up).
pub const PAGE_SIZE: u64 = 4096;

/// One mapping: IOVAs `start..=end` translate to `phys + (iova - start)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Last IOVA of the mapping (inclusive).
    pub end: u64,
    /// Guest-physical address of the first byte.
    pub phys: u64,
    /// MAP_F_* flags.
    pub flags: u32,
}

#[derive(Clone, Debug, Default)]
struct Domain {
    endpoints: BTreeSet<u32>,
    mappings: BTreeMap<u64, Mapping>,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReason {
    /// The endpoint is not attached to any domain.
    NotAttached,
    /// Some byte of the range has no mapping (for example, it was unmapped already).
    Unmapped,
    /// The mapping does not allow this access.
    Permission,
}

/// A failed translation, as the SMMU would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The endpoint (stream) that accessed.
    pub endpoint: u32,
    /// The first IOVA that did not translate.
    pub iova: u64,
    /// True for a write.
    pub write: bool,
    /// Why.
    pub reason: FaultReason,
}

/// Domains, endpoints and mappings.
#[derive(Clone, Debug, Default)]
pub struct SmmuTable {
    domains: BTreeMap<u32, Domain>,
    endpoint_domain: BTreeMap<u32, u32>,
    faults: Vec<Fault>,
    fault_count: u64,
}

/// Faults kept for reporting; later ones are only counted.
pub const MAX_FAULTS_KEPT: usize = 64;

impl SmmuTable {
    /// ATTACH: moves `endpoint` to `domain`, creating the domain on first use.
    pub fn attach(&mut self, domain: u32, endpoint: u32) -> Status {
        if !self.domains.contains_key(&domain) && self.domains.len() >= MAX_DOMAINS {
            return Status::NoMem;
        }
        if let Some(old) = self.endpoint_domain.get(&endpoint).copied() {
            if old == domain {
                return Status::Ok;
            }
            self.detach(old, endpoint);
        }
        self.domains
            .entry(domain)
            .or_default()
            .endpoints
            .insert(endpoint);
        self.endpoint_domain.insert(endpoint, domain);
        Status::Ok
    }

    /// DETACH: removes `endpoint` from `domain`; a domain left with no endpoint is destroyed
    /// with its mappings.
    pub fn detach(&mut self, domain: u32, endpoint: u32) -> Status {
        if self.endpoint_domain.get(&endpoint) != Some(&domain) {
            return Status::Inval;
        }
        self.endpoint_domain.remove(&endpoint);
        let empty = self.domains.get_mut(&domain).is_some_and(|d| {
            d.endpoints.remove(&endpoint);
            d.endpoints.is_empty()
        });
        if empty {
            self.domains.remove(&domain);
        }
        Status::Ok
    }

    /// MAP `virt_start..=virt_end` to `phys` in `domain`.
    pub fn map(
        &mut self,
        domain: u32,
        virt_start: u64,
        virt_end: u64,
        phys: u64,
        flags: u32,
    ) -> Status {
        if flags & !MAP_F_ALL != 0 {
            return Status::Inval;
        }
        if virt_end < virt_start {
            return Status::Inval;
        }
        let aligned = |a: u64| a % PAGE_SIZE == 0;
        if !aligned(virt_start) || !aligned(phys) || !aligned(virt_end.wrapping_add(1)) {
            return Status::Range;
        }
        if phys.checked_add(virt_end - virt_start).is_none() {
            return Status::Range;
        }
        let Some(d) = self.domains.get_mut(&domain) else {
            return Status::NoEnt;
        };
        let overlaps = d
            .mappings
            .range(..=virt_end)
            .next_back()
            .is_some_and(|(_, m)| m.end >= virt_start);
        if overlaps {
            return Status::Inval;
        }
        if d.mappings.len() >= MAX_MAPPINGS_PER_DOMAIN {
            return Status::NoMem;
        }
        d.mappings.insert(
            virt_start,
            Mapping {
                end: virt_end,
                phys,
                flags,
            },
        );
        Status::Ok
    }

    /// UNMAP every mapping inside `virt_start..=virt_end`; refuses (RANGE) to split one.
    pub fn unmap(&mut self, domain: u32, virt_start: u64, virt_end: u64) -> Status {
        let Some(d) = self.domains.get_mut(&domain) else {
            return Status::NoEnt;
        };
        if virt_end < virt_start {
            return Status::Inval;
        }
        let hit: Vec<(u64, Mapping)> = d
            .mappings
            .range(..=virt_end)
            .rev()
            .take_while(|(_, m)| m.end >= virt_start)
            .map(|(s, m)| (*s, *m))
            .collect();
        if hit.iter().any(|(s, m)| *s < virt_start || m.end > virt_end) {
            return Status::Range;
        }
        for (s, _) in hit {
            d.mappings.remove(&s);
        }
        Status::Ok
    }

    /// The domain `endpoint` is attached to.
    pub fn domain_of(&self, endpoint: u32) -> Option<u32> {
        self.endpoint_domain.get(&endpoint).copied()
    }

    /// The mappings of `domain`, in IOVA order, as (start, mapping).
    pub fn mappings(&self, domain: u32) -> Vec<(u64, Mapping)> {
        self.domains
            .get(&domain)
            .map(|d| d.mappings.iter().map(|(s, m)| (*s, *m)).collect())
            .unwrap_or_default()
    }

    /// Total number of mappings over all domains (0 = the DSP holds nothing).
    pub fn mapping_count(&self) -> usize {
        self.domains.values().map(|d| d.mappings.len()).sum()
    }

    /// Translates `len` bytes at `iova` for `endpoint`: the guest-physical address of each
    /// contiguous piece. A miss is recorded as a fault.
    pub fn translate(
        &mut self,
        endpoint: u32,
        iova: u64,
        len: u64,
        write: bool,
    ) -> Result<Vec<(u64, u64)>, Fault> {
        let result = self.lookup(endpoint, iova, len, write);
        if let Err(f) = result {
            self.fault_count += 1;
            if self.faults.len() < MAX_FAULTS_KEPT {
                self.faults.push(f);
            }
        }
        result
    }

    fn lookup(
        &self,
        endpoint: u32,
        iova: u64,
        len: u64,
        write: bool,
    ) -> Result<Vec<(u64, u64)>, Fault> {
        let fault = |iova, reason| Fault {
            endpoint,
            iova,
            write,
            reason,
        };
        let domain = self
            .endpoint_domain
            .get(&endpoint)
            .and_then(|d| self.domains.get(d))
            .ok_or(fault(iova, FaultReason::NotAttached))?;
        let need = if write { MAP_F_WRITE } else { MAP_F_READ };
        let mut pieces = Vec::new();
        let mut at = iova;
        let mut left = len;
        // Each step consumes at least one byte of a mapping, so this ends within the mapping
        // count; the cap also bounds a guest-controlled length.
        while left > 0 {
            let (start, m) = domain
                .mappings
                .range(..=at)
                .next_back()
                .filter(|(_, m)| m.end >= at)
                .ok_or(fault(at, FaultReason::Unmapped))?;
            if m.flags & need == 0 {
                return Err(fault(at, FaultReason::Permission));
            }
            let avail = m.end - at + 1;
            let take = avail.min(left);
            pieces.push((m.phys + (at - start), take));
            left -= take;
            at = match at.checked_add(take) {
                Some(a) => a,
                None if left == 0 => at,
                None => return Err(fault(at, FaultReason::Unmapped)),
            };
            if pieces.len() > MAX_MAPPINGS_PER_DOMAIN {
                return Err(fault(at, FaultReason::Unmapped));
            }
        }
        Ok(pieces)
    }

    /// Faults recorded so far (the first [`MAX_FAULTS_KEPT`]) and the total count.
    pub fn faults(&self) -> (&[Fault], u64) {
        (&self.faults, self.fault_count)
    }

    /// Forgets everything (device reset).
    pub fn reset(&mut self) {
        *self = SmmuTable::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: u32 = 0x2000f;

    fn table_with_map() -> SmmuTable {
        let mut t = SmmuTable::default();
        assert_eq!(t.attach(1, EP), Status::Ok);
        assert_eq!(
            t.map(1, 0x1000, 0x1fff, 0x4800_0000, MAP_F_READ | MAP_F_WRITE),
            Status::Ok
        );
        t
    }

    #[test]
    fn translate_follows_the_mapping_and_faults_outside() {
        let mut t = table_with_map();
        assert_eq!(
            t.translate(EP, 0x1010, 0x20, true),
            Ok(vec![(0x4800_0010, 0x20)])
        );
        let f = t.translate(EP, 0x1ff0, 0x20, false).unwrap_err();
        assert_eq!((f.iova, f.reason), (0x2000, FaultReason::Unmapped));
        assert_eq!(
            t.translate(7, 0x1000, 4, false).unwrap_err().reason,
            FaultReason::NotAttached
        );
        assert_eq!(t.faults().1, 2);
    }

    #[test]
    fn translation_spans_adjacent_mappings() {
        let mut t = table_with_map();
        assert_eq!(
            t.map(1, 0x2000, 0x2fff, 0x5000_0000, MAP_F_READ),
            Status::Ok
        );
        assert_eq!(
            t.translate(EP, 0x1ff0, 0x20, false),
            Ok(vec![(0x4800_0ff0, 0x10), (0x5000_0000, 0x10)])
        );
        assert_eq!(
            t.translate(EP, 0x2000, 4, true).unwrap_err().reason,
            FaultReason::Permission
        );
    }

    #[test]
    fn map_rejects_overlap_misalignment_bad_flags_and_unknown_domain() {
        let mut t = table_with_map();
        assert_eq!(t.map(1, 0x0, 0x1fff, 0, MAP_F_READ), Status::Inval);
        assert_eq!(t.map(1, 0x1800, 0x27ff, 0, MAP_F_READ), Status::Range);
        assert_eq!(t.map(1, 0x3000, 0x3fff, 0x10, MAP_F_READ), Status::Range);
        assert_eq!(t.map(1, 0x3000, 0x3fff, 0, 0x80), Status::Inval);
        assert_eq!(t.map(1, 0x4000, 0x3fff, 0, MAP_F_READ), Status::Inval);
        assert_eq!(t.map(9, 0x3000, 0x3fff, 0, MAP_F_READ), Status::NoEnt);
        assert_eq!(
            t.map(
                1,
                0xffff_ffff_ffff_f000,
                u64::MAX,
                u64::MAX - 0xfff,
                MAP_F_READ
            ),
            Status::Ok
        );
        assert_eq!(
            t.map(1, 0x5000, 0x5fff, u64::MAX - 0x7ff, MAP_F_READ),
            Status::Range
        );
    }

    #[test]
    fn unmap_removes_covered_mappings_and_refuses_to_split() {
        let mut t = table_with_map();
        assert_eq!(t.map(1, 0x2000, 0x3fff, 0x9000, MAP_F_READ), Status::Ok);
        assert_eq!(t.unmap(1, 0x1000, 0x2fff), Status::Range);
        assert_eq!(t.mapping_count(), 2);
        assert_eq!(t.unmap(1, 0x0, 0xffff), Status::Ok);
        assert_eq!(t.mapping_count(), 0);
        assert_eq!(
            t.unmap(1, 0x0, 0xffff),
            Status::Ok,
            "unmapping nothing is fine"
        );
        assert_eq!(t.unmap(5, 0, 1), Status::NoEnt);
    }

    #[test]
    fn detach_of_last_endpoint_destroys_domain_and_reattach_moves() {
        let mut t = table_with_map();
        assert_eq!(t.detach(2, EP), Status::Inval);
        assert_eq!(
            t.attach(2, EP),
            Status::Ok,
            "attach elsewhere detaches first"
        );
        assert_eq!(t.domain_of(EP), Some(2));
        assert_eq!(t.mapping_count(), 0, "domain 1 went with its last endpoint");
        assert_eq!(t.map(1, 0x1000, 0x1fff, 0, MAP_F_READ), Status::NoEnt);
        assert_eq!(t.detach(2, EP), Status::Ok);
        assert_eq!(t.domain_of(EP), None);
    }
}
