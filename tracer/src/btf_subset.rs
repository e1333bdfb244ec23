//! A subset of the kernel's BTF holding only what one eBPF object needs for
//! its CO-RE relocations: the kernel types named like the types its
//! relocations start from, and everything those hold by value. Pointers in
//! the subset point to void: a relocation never follows a pointer (each
//! dereference is a relocation of its own, starting from the pointed-to
//! type, which is then a root itself), and a pointer field matches any
//! pointer.
//!
//! Why: the kernel's BTF is ~5 MB and ~150k types; parsing all of it is what
//! made `ig` start slowly and peak at ~30 MB (aya parses it whole). The
//! subset of a gadget is a few hundred types.
//!
//! Type ids in the subset are not the kernel's: it is only for relocating
//! field offsets, sizes and existence checks, never for attaching by BTF id.
//! Format: the kernel's include/uapi/linux/btf.h and Documentation/bpf/btf.rst.

use std::collections::{HashMap, HashSet, VecDeque};

use object::{Object, ObjectSection};

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// struct bpf_core_relo: insn_off, type_id, access_str_off, kind.
const CORE_RELO_LEN: usize = 16;
const TYPE_HEADER_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfSubsetError {
    #[error("not BTF (bad magic or header)")]
    BadHeader,
    #[error("BTF section out of bounds")]
    OutOfBounds,
    #[error("unknown BTF kind {0}")]
    UnknownKind(u32),
    #[error("BTF type {0} refers to type {1}, which does not exist")]
    BadTypeId(u32, u32),
    #[error("the object is not ELF: {0}")]
    Elf(String),
    #[error("the object has no .BTF.ext with CO-RE relocations")]
    NoRelocations,
}

/// BTF kinds (BTF_KIND_* in include/uapi/linux/btf.h).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfSubsetError> {
    let bytes = b.get(at..at + 4).ok_or(BtfSubsetError::OutOfBounds)?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
}

/// One BTF blob read in place: its type records indexed by id.
struct BtfView<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Offset in `types` of the record of its i-th type (ids start after
    /// the base's for a module's split BTF, at 1 otherwise; 0 is void).
    offsets: Vec<u32>,
}

/// Bytes after the 12-byte header of a type record of this kind.
fn trailer_len(kind: u32, vlen: usize) -> Result<usize, BtfSubsetError> {
    Ok(match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
        kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        other => return Err(BtfSubsetError::UnknownKind(other)),
    })
}

impl<'a> BtfView<'a> {
    /// Little-endian BTF only: the byte order of the machines ig runs on.
    fn parse(data: &'a [u8]) -> Result<Self, BtfSubsetError> {
        if data.len() < HEADER_LEN || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            return Err(BtfSubsetError::BadHeader);
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let section = |off: usize, len: usize| -> Result<&'a [u8], BtfSubsetError> {
            let start = hdr_len + u32_at(data, off)? as usize;
            let end = start + u32_at(data, len)? as usize;
            data.get(start..end).ok_or(BtfSubsetError::OutOfBounds)
        };
        let types = section(8, 12)?;
        let strings = section(16, 20)?;
        let mut offsets = Vec::new();
        let mut at = 0usize;
        while at < types.len() {
            offsets.push(at as u32);
            let info = u32_at(types, at + 4)?;
            at += TYPE_HEADER_LEN + trailer_len((info >> 24) & 0x1f, (info & 0xffff) as usize)?;
        }
        if at != types.len() {
            return Err(BtfSubsetError::OutOfBounds);
        }
        Ok(Self { types, strings, offsets })
    }

    fn len(&self) -> u32 {
        self.offsets.len() as u32
    }

    /// The whole record (header and trailer) of type `id` (1-based).
    fn record(&self, id: u32) -> &'a [u8] {
        let start = self.offsets[id as usize - 1] as usize;
        let end = self.offsets.get(id as usize).map_or(self.types.len(), |&o| o as usize);
        &self.types[start..end]
    }

    fn name(&self, name_off: u32) -> &'a [u8] {
        let rest = self.strings.get(name_off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())]
    }
}

fn info_kind(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

/// `task_struct___new` is a flavour of `task_struct`: both match it.
fn flavorless(name: &[u8]) -> &[u8] {
    name.windows(3).position(|w| w == b"___").map_or(name, |i| &name[..i])
}

/// The names of the local types the object's CO-RE relocations start from.
fn relocation_roots(object: &[u8]) -> Result<HashSet<Vec<u8>>, BtfSubsetError> {
    let elf = object::File::parse(object).map_err(|e| BtfSubsetError::Elf(e.to_string()))?;
    let section = |name: &str| -> Result<&[u8], BtfSubsetError> {
        let s = elf.section_by_name(name).ok_or(BtfSubsetError::NoRelocations)?;
        s.data().map_err(|e| BtfSubsetError::Elf(e.to_string()))
    };
    let local = BtfView::parse(section(".BTF")?)?;
    let ext = section(".BTF.ext")?;
    // struct btf_ext_header: magic, version, flags, hdr_len, then offset and
    // length pairs for func_info, line_info and (from 32 bytes on) core_relo.
    let hdr_len = u32_at(ext, 4)? as usize;
    if ext.len() < 8 || u16::from_le_bytes([ext[0], ext[1]]) != BTF_MAGIC || hdr_len < 32 {
        return Err(BtfSubsetError::NoRelocations);
    }
    let start = hdr_len + u32_at(ext, 24)? as usize;
    let relos = ext.get(start..start + u32_at(ext, 28)? as usize).ok_or(BtfSubsetError::OutOfBounds)?;
    let record_size = u32_at(relos, 0)? as usize;
    // A record holds at least its four u32 fields; a smaller size would
    // never move on (the fuzzer's find: four billion reads of one record).
    if record_size < CORE_RELO_LEN {
        return Err(BtfSubsetError::OutOfBounds);
    }
    let mut roots = HashSet::new();
    let mut at = 4;
    // Per ELF section: its name, the record count, the records
    // (insn_off, type_id, access_str_off, kind).
    while at < relos.len() {
        let count = u32_at(relos, at + 4)? as usize;
        at += 8;
        if count.checked_mul(record_size).is_none_or(|bytes| bytes > relos.len() - at.min(relos.len())) {
            return Err(BtfSubsetError::OutOfBounds);
        }
        for _ in 0..count {
            let type_id = u32_at(relos, at + 4)?;
            if type_id == 0 || type_id > local.len() {
                return Err(BtfSubsetError::BadTypeId(0, type_id));
            }
            let name = local.name(u32_at(local.record(type_id), 0)?);
            roots.insert(flavorless(name).to_vec());
            at += record_size;
        }
    }
    Ok(roots)
}

/// Type ids held by value in the record of a kept type.
fn by_value_refs(record: &[u8]) -> Result<Vec<u32>, BtfSubsetError> {
    let info = u32_at(record, 4)?;
    let vlen = (info & 0xffff) as usize;
    Ok(match info_kind(info) {
        kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
            vec![u32_at(record, 8)?]
        }
        kind::ARRAY => vec![u32_at(record, 12)?, u32_at(record, 16)?],
        kind::STRUCT | kind::UNION => {
            (0..vlen).map(|i| u32_at(record, TYPE_HEADER_LEN + 12 * i + 4)).collect::<Result<_, _>>()?
        }
        _ => Vec::new(),
    })
}

/// Kinds a relocation can start from (functions, variables and sections are
/// never relocated against).
fn relocatable(k: u32) -> bool {
    !matches!(k, kind::FUNC | kind::FUNC_PROTO | kind::VAR | kind::DATASEC | kind::DECL_TAG)
}

/// The kernel's BTF and the split BTF of some of its modules, as one id
/// space: the kernel's ids, then each module's own types in turn (a module's
/// BTF numbers its types on from the kernel's last id and refers to the
/// kernel's types by their ids, and to its strings past the kernel's).
struct Sources<'a> {
    kernel: BtfView<'a>,
    modules: Vec<BtfView<'a>>,
    /// The global id before each module's first type.
    module_base: Vec<u32>,
}

impl<'a> Sources<'a> {
    fn new(kernel: &'a [u8], modules: &[&'a [u8]]) -> Result<Self, BtfSubsetError> {
        let kernel = BtfView::parse(kernel)?;
        let mut base = kernel.len();
        let (mut views, mut module_base) = (Vec::new(), Vec::new());
        for m in modules {
            let view = BtfView::parse(m)?;
            module_base.push(base);
            base += view.len();
            views.push(view);
        }
        Ok(Self { kernel, modules: views, module_base })
    }

    fn len(&self) -> u32 {
        self.module_base.last().zip(self.modules.last()).map_or(self.kernel.len(), |(b, m)| b + m.len())
    }

    /// (source: 0 the kernel, i + 1 module i; its own id for the type).
    fn locate(&self, id: u32) -> (usize, u32) {
        if id <= self.kernel.len() {
            return (0, id);
        }
        let i = self.module_base.partition_point(|&b| b < id) - 1;
        (i + 1, id - self.module_base[i])
    }

    fn record(&self, id: u32) -> &'a [u8] {
        match self.locate(id) {
            (0, local) => self.kernel.record(local),
            (m, local) => self.modules[m - 1].record(local),
        }
    }

    fn name(&self, source: usize, name_off: u32) -> &'a [u8] {
        let kernel_strings = self.kernel.strings.len() as u32;
        match source {
            0 => self.kernel.name(name_off),
            _ if name_off < kernel_strings => self.kernel.name(name_off),
            m => self.modules[m - 1].name(name_off - kernel_strings),
        }
    }

    /// The global id of a type reference `r` made inside `source`.
    fn global(&self, source: usize, r: u32) -> u32 {
        if source == 0 || r <= self.kernel.len() {
            r
        } else {
            self.module_base[source - 1] + (r - self.kernel.len())
        }
    }
}

/// Whether `data` is a well-formed BTF blob (header, sections, type records).
pub fn is_btf(data: &[u8]) -> bool {
    BtfView::parse(data).is_ok()
}

/// The subset of `kernel` BTF that `object` relocates against, as a BTF blob.
pub fn for_object(kernel: &[u8], object: &[u8]) -> Result<Vec<u8>, BtfSubsetError> {
    for_object_with_modules(kernel, &[], object)
}

/// The names of the types `object`'s relocations start from that `kernel`
/// (vmlinux's BTF) does not have: where the object reads a module's types.
pub fn roots_missing_from(kernel: &[u8], object: &[u8]) -> Result<Vec<Vec<u8>>, BtfSubsetError> {
    let mut roots = relocation_roots(object)?;
    let btf = BtfView::parse(kernel)?;
    for id in 1..=btf.len() {
        let record = btf.record(id);
        let info = u32_at(record, 4)?;
        if relocatable(info_kind(info)) {
            roots.remove(flavorless(btf.name(u32_at(record, 0)?)));
        }
    }
    let mut missing: Vec<Vec<u8>> = roots.into_iter().collect();
    missing.sort();
    Ok(missing)
}

/// Whether a module's split BTF (on top of `kernel`) defines any of `names`.
pub fn module_defines(kernel: &[u8], module: &[u8], names: &[Vec<u8>]) -> Result<bool, BtfSubsetError> {
    let sources = Sources::new(kernel, &[module])?;
    for id in sources.kernel.len() + 1..=sources.len() {
        let record = sources.record(id);
        let info = u32_at(record, 4)?;
        let name = flavorless(sources.name(1, u32_at(record, 0)?));
        if relocatable(info_kind(info)) && names.iter().any(|n| n == name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The subset of `kernel` BTF, plus the types of the `modules` (their split
/// BTF), that `object` relocates against, as one standalone BTF blob.
pub fn for_object_with_modules(
    kernel: &[u8],
    modules: &[&[u8]],
    object: &[u8],
) -> Result<Vec<u8>, BtfSubsetError> {
    let roots = relocation_roots(object)?;
    let btf = Sources::new(kernel, modules)?;

    // New ids in discovery order; old id -> new id (0: not kept).
    let mut new_id = vec![0u32; btf.len() as usize + 1];
    let mut kept: Vec<u32> = Vec::new();
    let mut queue = VecDeque::new();
    let keep = |id: u32, new_id: &mut Vec<u32>, kept: &mut Vec<u32>, queue: &mut VecDeque<u32>| {
        if id != 0 && new_id[id as usize] == 0 {
            kept.push(id);
            new_id[id as usize] = kept.len() as u32;
            queue.push_back(id);
        }
    };
    for id in 1..=btf.len() {
        let record = btf.record(id);
        let info = u32_at(record, 4)?;
        let (source, _) = btf.locate(id);
        if relocatable(info_kind(info)) && roots.contains(flavorless(btf.name(source, u32_at(record, 0)?))) {
            keep(id, &mut new_id, &mut kept, &mut queue);
        }
    }
    while let Some(id) = queue.pop_front() {
        let (source, _) = btf.locate(id);
        for r in by_value_refs(btf.record(id))? {
            let r = btf.global(source, r);
            if r > btf.len() {
                return Err(BtfSubsetError::BadTypeId(id, r));
            }
            keep(r, &mut new_id, &mut kept, &mut queue);
        }
    }

    let mut strings = Strings::default();
    let mut types = Vec::new();
    for &id in &kept {
        let (source, _) = btf.locate(id);
        let map = |old: u32| new_id.get(btf.global(source, old) as usize).copied().unwrap_or(0);
        let name = |off: u32| btf.name(source, off);
        let record = btf.record(id);
        let info = u32_at(record, 4)?;
        let k = info_kind(info);
        let vlen = (info & 0xffff) as usize;
        let size_or_type = u32_at(record, 8)?;
        put(&mut types, strings.add(name(u32_at(record, 0)?)));
        put(&mut types, info);
        put(
            &mut types,
            match k {
                kind::PTR => 0,
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    map(size_or_type)
                }
                _ => size_or_type,
            },
        );
        let trailer = &record[TYPE_HEADER_LEN..];
        match k {
            kind::ARRAY => {
                put(&mut types, map(u32_at(trailer, 0)?));
                put(&mut types, map(u32_at(trailer, 4)?));
                put(&mut types, u32_at(trailer, 8)?);
            }
            kind::STRUCT | kind::UNION => {
                for i in 0..vlen {
                    put(&mut types, strings.add(name(u32_at(trailer, 12 * i)?)));
                    put(&mut types, map(u32_at(trailer, 12 * i + 4)?));
                    put(&mut types, u32_at(trailer, 12 * i + 8)?);
                }
            }
            kind::ENUM | kind::ENUM64 => {
                let step = if k == kind::ENUM { 8 } else { 12 };
                for i in 0..vlen {
                    put(&mut types, strings.add(name(u32_at(trailer, step * i)?)));
                    types.extend_from_slice(&trailer[step * i + 4..step * (i + 1)]);
                }
            }
            // INT's encoding word; the other kept kinds have no trailer.
            _ => types.extend_from_slice(trailer),
        }
    }

    Ok(blob(&types, &strings.bytes))
}

/// A BTF blob of these type records and strings.
fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
    out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    out.extend_from_slice(&[1, 0]); // version 1, no flags
    for word in [HEADER_LEN as u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
        put(&mut out, word);
    }
    out.extend_from_slice(types);
    out.extend_from_slice(strings);
    out
}

/// The id `kernel` gives the function `name`: what a program attached by
/// BTF (fentry, fexit) names as its target. None when the kernel has no
/// such function (inlined, renamed, or not built).
pub fn function_id(kernel: &[u8], name: &str) -> Result<Option<u32>, BtfSubsetError> {
    let btf = BtfView::parse(kernel)?;
    for id in 1..=btf.len() {
        let record = btf.record(id);
        if info_kind(u32_at(record, 4)?) == kind::FUNC && btf.name(u32_at(record, 0)?) == name.as_bytes() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// A BTF blob where the function `name` has the id `id` and every id
/// before it is a pointer to void. aya's `FExit::load` finds a target's id
/// by its name in the BTF it is given; this gives it the kernel's id
/// without the kernel's 100,000-odd types being parsed (~12 bytes an id).
pub fn function_stand_in(name: &str, id: u32) -> Vec<u8> {
    let mut types = Vec::with_capacity(TYPE_HEADER_LEN * id as usize);
    for _ in 1..id {
        for word in [0, kind::PTR << 24, 0] {
            put(&mut types, word);
        }
    }
    // name at offset 1 of the strings, static linkage, no prototype given.
    for word in [1, kind::FUNC << 24, 0] {
        put(&mut types, word);
    }
    let mut strings = vec![0];
    strings.extend_from_slice(name.as_bytes());
    strings.push(0);
    blob(&types, &strings)
}

fn put(out: &mut Vec<u8>, word: u32) {
    out.extend_from_slice(&word.to_le_bytes());
}

/// The string section being built: each name once, offset 0 is "".
struct Strings {
    bytes: Vec<u8>,
    offsets: HashMap<Vec<u8>, u32>,
}

impl Default for Strings {
    fn default() -> Self {
        Self { bytes: vec![0], offsets: HashMap::new() }
    }
}

impl Strings {
    fn add(&mut self, name: &[u8]) -> u32 {
        if name.is_empty() {
            return 0;
        }
        if let Some(&off) = self.offsets.get(name) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        self.bytes.push(0);
        self.offsets.insert(name.to_vec(), off);
        off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel_btf() -> Vec<u8> {
        std::fs::read(crate::kernel::KERNEL_BTF)
            .expect("this test needs the kernel's BTF at /sys/kernel/btf/vmlinux")
    }

    #[test]
    fn a_functions_stand_in_gives_aya_the_kernels_id() {
        let kernel = kernel_btf();
        let id = function_id(&kernel, "do_sys_openat2").unwrap().expect("the kernel has do_sys_openat2");
        assert!(id > 1000, "a function of fs/ is deep in the kernel's BTF: {id}");
        let stand_in = function_stand_in("do_sys_openat2", id);
        let btf = aya::Btf::parse(&stand_in, aya::Endianness::default()).expect("aya reads the stand-in");
        let found = btf.id_by_type_name_kind("do_sys_openat2", aya_obj::btf::BtfKind::Func);
        assert_eq!(found.ok(), Some(id));
        assert_eq!(function_id(&kernel, "no_such_function_here").unwrap(), None);
    }

    /// Found by fuzz/targets/btf_subset.rs: an object whose relocation
    /// records claim a size of 0, or more records than the section holds,
    /// is refused at once (it made the cutter read one record 4 billion times).
    #[test]
    fn relocation_records_of_no_size_or_too_many_are_refused() {
        use object::{Object, ObjectSection};
        let original: &[u8] = &crate::gadgets::trace_exec::bpf::OBJECT;
        let elf = object::File::parse(original).unwrap();
        let (ext_at, _) = elf.section_by_name(".BTF.ext").unwrap().file_range().unwrap();
        let ext_at = ext_at as usize;
        let ext = &original[ext_at..];
        let relos_at = ext_at + u32_at(ext, 4).unwrap() as usize + u32_at(ext, 24).unwrap() as usize;
        let kernel = kernel_btf();
        assert!(for_object(&kernel, original).is_ok());
        let patched = |at: usize, value: u32| {
            let mut o = original.to_vec();
            o[at..at + 4].copy_from_slice(&value.to_le_bytes());
            o
        };
        // record_size, then the first section's record count.
        for object in [patched(relos_at, 0), patched(relos_at, 4), patched(relos_at + 8, u32::MAX)] {
            assert!(matches!(relocation_roots(&object), Err(BtfSubsetError::OutOfBounds)));
        }
    }

    #[test]
    fn a_gadgets_subset_is_small_and_parses() {
        let kernel = kernel_btf();
        for object in [
            &crate::gadgets::trace_exec::bpf::OBJECT,
            &crate::gadgets::trace_dns::bpf::OBJECT,
            &crate::gadgets::top_file::bpf::OBJECT,
        ] {
            let subset = for_object(&kernel, object).expect("subset");
            assert!(subset.len() * 10 < kernel.len(), "{} of {} bytes", subset.len(), kernel.len());
            let parsed = aya::Btf::parse(&subset, aya::Endianness::default()).expect("aya reads the subset");
            drop(parsed);
            let view = BtfView::parse(&subset).unwrap();
            let names: HashSet<&[u8]> =
                (1..=view.len()).map(|id| view.name(u32_at(view.record(id), 0).unwrap())).collect();
            assert!(names.contains(&b"task_struct"[..]), "every gadget reads the task");
        }
    }

    #[test]
    fn pointers_point_to_void_and_members_keep_their_offsets() {
        let kernel = kernel_btf();
        let subset = for_object(&kernel, &crate::gadgets::trace_exec::bpf::OBJECT).unwrap();
        let (full, sub) = (BtfView::parse(&kernel).unwrap(), BtfView::parse(&subset).unwrap());
        let find = |v: &BtfView, name: &[u8]| {
            (1..=v.len())
                .find(|&id| {
                    let r = v.record(id);
                    info_kind(u32_at(r, 4).unwrap()) == kind::STRUCT && v.name(u32_at(r, 0).unwrap()) == name
                })
                .expect("struct present")
        };
        let (a, b) = (full.record(find(&full, b"task_struct")), sub.record(find(&sub, b"task_struct")));
        assert_eq!(a.len(), b.len(), "same member count");
        assert_eq!(u32_at(a, 8), u32_at(b, 8), "same size");
        for i in 0..(u32_at(a, 4).unwrap() & 0xffff) as usize {
            let at = TYPE_HEADER_LEN + 12 * i;
            assert_eq!(full.name(u32_at(a, at).unwrap()), sub.name(u32_at(b, at).unwrap()));
            assert_eq!(u32_at(a, at + 8), u32_at(b, at + 8), "bit offset of member {i}");
        }
        for id in 1..=sub.len() {
            let r = sub.record(id);
            if info_kind(u32_at(r, 4).unwrap()) == kind::PTR {
                assert_eq!(u32_at(r, 8), Ok(0));
            }
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(BtfView::parse(b"not btf at all, not at all").err(), Some(BtfSubsetError::BadHeader));
        assert!(matches!(for_object(&kernel_btf(), b"\x7fELF garbage"), Err(BtfSubsetError::Elf(_))));
        let mut cut = kernel_btf();
        cut.truncate(4096);
        assert_eq!(BtfView::parse(&cut).err(), Some(BtfSubsetError::OutOfBounds));
    }
}
