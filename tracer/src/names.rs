//! The `user` and `group` columns: a uid or gid named as the process's own
//! system names it, from the /etc/passwd and /etc/group of its container's
//! root (through /proc/<pid>/root of the container's init) or of the host.
//! Each root's files are read once, at its first event, and kept for the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shared::ContainerRecord;

/// uid -> name and gid -> name of one root.
#[derive(Debug, Default)]
struct Names {
    users: HashMap<u32, Arc<str>>,
    groups: HashMap<u32, Arc<str>>,
}

/// `name:x:id:...` lines: the first name given each id wins, as getpwuid's does.
fn parse_ids(text: &str) -> HashMap<u32, Arc<str>> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else { continue };
        if let Ok(id) = id.trim().parse()
            && !name.is_empty()
            && !name.starts_with('#')
        {
            out.entry(id).or_insert_with(|| Arc::from(name));
        }
    }
    out
}

impl Names {
    fn read(root: &Path) -> Self {
        // Bounded: a container could hold anything at these paths.
        let read = |file: &str| {
            use std::io::Read;
            let mut text = String::new();
            if let Ok(f) = std::fs::File::open(root.join(file)) {
                let _ = f.take(4 << 20).read_to_string(&mut text);
            }
            text
        };
        Self { users: parse_ids(&read("etc/passwd")), groups: parse_ids(&read("etc/group")) }
    }
}

/// The names of every root seen in a run.
pub struct NameCache {
    host_root: PathBuf,
    /// None: the host; else the container's id.
    roots: HashMap<Option<String>, Names>,
}

impl NameCache {
    pub fn new(host_root: &Path) -> Self {
        Self { host_root: host_root.to_path_buf(), roots: HashMap::new() }
    }

    /// The user and group names of `uid` and `gid` in `container` (None:
    /// the host); an id without a name is shown as its number.
    pub fn names(
        &mut self,
        container: Option<&ContainerRecord>,
        uid: u32,
        gid: u32,
    ) -> crate::event::ProcessNames {
        let key = container.map(|c| c.runtime.container_id.clone());
        let host_root = &self.host_root;
        let names = self.roots.entry(key).or_insert_with(|| match container {
            Some(c) => Names::read(&host_root.join(format!("proc/{}/root", c.pid))),
            None => Names::read(host_root),
        });
        let name = |map: &HashMap<u32, Arc<str>>, id: u32| {
            map.get(&id).cloned().unwrap_or_else(|| id.to_string().into())
        };
        (name(&names.users, uid), name(&names.groups, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_name_their_ids() {
        let ids = parse_ids(
            "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\n\nbroken\nalias:x:0:0::/:/bin/sh\n",
        );
        assert_eq!(ids[&0].as_ref(), "root", "the first name wins");
        assert_eq!(ids[&1000].as_ref(), "web");
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn a_container_root_has_its_own_names() {
        let dir = std::env::temp_dir().join(format!("ig-names-{}", std::process::id()));
        let root = dir.join(format!("proc/{}/root/etc", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("passwd"), "app:x:1000:1000::/:/bin/sh\n").unwrap();
        std::fs::write(root.join("group"), "apps:x:1000:\n").unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), "hostuser:x:1000:1000::/:/bin/sh\n").unwrap();
        let mut record = ContainerRecord::default();
        record.runtime.container_id = "c1".into();
        record.pid = std::process::id();
        let mut cache = NameCache::new(&dir);
        let (u, g) = cache.names(Some(&record), 1000, 1000);
        assert_eq!((u.as_ref(), g.as_ref()), ("app", "apps"));
        let (u, g) = cache.names(None, 1000, 1000);
        assert_eq!((u.as_ref(), g.as_ref()), ("hostuser", "1000"), "no host group file: the number");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
