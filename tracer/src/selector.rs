//! Which containers a run selects: by name, Kubernetes namespace, pod,
//! container, pod labels and image (`-c`, `--k8s-*`,
//! `--runtime-containerimage`). A run's in-kernel filter holds the mount
//! namespaces of the containers this matches, as they come and go.

use std::collections::BTreeMap;

use clap::Args;
use shared::ContainerRecord;

/// The selection flags every gadget and `list-containers` take.
#[derive(Clone, Debug, Default, Args)]
pub struct SelectorFlags {
    /// Only these containers (runtime or Kubernetes container names,
    /// comma-separated; `!name` excludes one).
    #[arg(short = 'c', long = "containername", value_parser = NameList::parse)]
    pub containername: Option<NameList>,

    /// Only containers of pods in these Kubernetes namespaces (`!ns` excludes).
    #[arg(long = "k8s-namespace", value_parser = NameList::parse)]
    pub k8s_namespace: Option<NameList>,

    /// Only containers of these pods (`!pod` excludes).
    #[arg(long = "k8s-podname", value_parser = NameList::parse)]
    pub k8s_podname: Option<NameList>,

    /// Only these Kubernetes container names (`!name` excludes).
    #[arg(long = "k8s-containername", value_parser = NameList::parse)]
    pub k8s_containername: Option<NameList>,

    /// Only pods whose labels match: `k=v`, `k!=v`, `k` (set), `!k` (unset), comma-separated, all must hold.
    #[arg(long = "k8s-selector", value_parser = LabelSelector::parse)]
    pub k8s_selector: Option<LabelSelector>,

    /// Only containers of these images (`nginx` matches docker.io/library/nginx:1.27; `!image` excludes).
    #[arg(long = "runtime-containerimage", value_parser = NameList::parse)]
    pub runtime_containerimage: Option<NameList>,
}

impl SelectorFlags {
    pub fn selector(&self) -> ContainerSelector {
        ContainerSelector {
            names: self.containername.clone().unwrap_or_default(),
            namespaces: self.k8s_namespace.clone().unwrap_or_default(),
            pods: self.k8s_podname.clone().unwrap_or_default(),
            k8s_containers: self.k8s_containername.clone().unwrap_or_default(),
            labels: self.k8s_selector.clone().unwrap_or_default(),
            images: self.runtime_containerimage.clone().unwrap_or_default(),
        }
    }
}

/// A comma list of names: a value must be one of the plain ones (if any)
/// and none of the `!` ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameList {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl NameList {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for item in s.split(',').map(str::trim) {
            let (names, name) = match item.strip_prefix('!') {
                Some(name) => (&mut list.exclude, name.trim()),
                None => (&mut list.include, item),
            };
            if name.is_empty() {
                return Err(format!("an empty name in {s:?}"));
            }
            names.push(name.to_string());
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether a container known by these `values` (e.g. its runtime and
    /// Kubernetes names) passes, with `same` deciding what equal means.
    fn admits(&self, values: &[&str], same: impl Fn(&str, &str) -> bool) -> bool {
        let hit = |names: &[String]| names.iter().any(|n| values.iter().any(|v| same(n, v)));
        (self.include.is_empty() || hit(&self.include)) && !hit(&self.exclude)
    }
}

/// One term of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelTerm {
    Equals(String, String),
    /// Also true when the label is not set, as in Kubernetes.
    Differs(String, String),
    Set(String),
    Unset(String),
}

/// Pod labels that must all hold (Kubernetes' equality-based selectors).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    terms: Vec<LabelTerm>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for item in s.split(',').map(str::trim) {
            let key_ok = |k: &str| !k.is_empty() && !k.contains(['=', '!', ' ']);
            let term = if let Some((k, v)) = item.split_once("!=") {
                LabelTerm::Differs(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = item.split_once("==").or_else(|| item.split_once('=')) {
                LabelTerm::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = item.strip_prefix('!') {
                LabelTerm::Unset(k.trim().into())
            } else {
                LabelTerm::Set(item.into())
            };
            let (LabelTerm::Equals(k, _)
            | LabelTerm::Differs(k, _)
            | LabelTerm::Set(k)
            | LabelTerm::Unset(k)) = &term;
            if !key_ok(k) {
                return Err(format!("{item:?} is not a label selector term (k=v, k!=v, k or !k)"));
            }
            terms.push(term);
        }
        Ok(Self { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            LabelTerm::Equals(k, v) => labels.get(k) == Some(v),
            LabelTerm::Differs(k, v) => labels.get(k) != Some(v),
            LabelTerm::Set(k) => labels.contains_key(k),
            LabelTerm::Unset(k) => !labels.contains_key(k),
        })
    }
}

/// Which containers a gadget run selects; the empty selector selects all.
#[derive(Clone, Debug, Default)]
pub struct ContainerSelector {
    names: NameList,
    namespaces: NameList,
    pods: NameList,
    k8s_containers: NameList,
    labels: LabelSelector,
    images: NameList,
}

impl ContainerSelector {
    /// Only containers called `name` (runtime or Kubernetes name).
    pub fn named(name: &str) -> Self {
        Self { names: NameList { include: vec![name.into()], exclude: Vec::new() }, ..Self::default() }
    }

    /// Whether it selects every container (no selection flag given).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.namespaces.is_empty()
            && self.pods.is_empty()
            && self.k8s_containers.is_empty()
            && self.labels.is_empty()
            && self.images.is_empty()
    }

    pub fn matches(&self, r: &ContainerRecord) -> bool {
        let exact = |a: &str, b: &str| a == b;
        self.names.admits(&[&r.runtime.container_name, &r.k8s.container_name], exact)
            && self.namespaces.admits(&[&r.k8s.namespace], exact)
            && self.pods.admits(&[&r.k8s.pod_name], exact)
            && self.k8s_containers.admits(&[&r.k8s.container_name], exact)
            && self.labels.matches(&r.k8s.pod_labels)
            && self.images.admits(&[&r.runtime.container_image_name], image_matches)
    }
}

/// Whether the image reference `wanted` names `image`: the same, or the
/// same repository at a path boundary (`nginx` is
/// `docker.io/library/nginx`), with the same tag or digest where `wanted`
/// gives one.
fn image_matches(wanted: &str, image: &str) -> bool {
    if wanted == image {
        return true;
    }
    let (want_repo, want_ref) = split_image(wanted);
    let (repo, reference) = split_image(image);
    let same_repo =
        repo == want_repo || repo.strip_suffix(want_repo).is_some_and(|prefix| prefix.ends_with('/'));
    same_repo && (want_ref.is_none() || want_ref == reference)
}

/// `registry/path/name:tag` or `...@sha256:...` into the repository and the
/// tag or digest (a `:` before the last `/` is a registry's port).
fn split_image(image: &str) -> (&str, Option<&str>) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, Some(digest));
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], Some(&image[name_start + i + 1..])),
        None => (image, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, ns: &str, pod: &str, labels: &[(&str, &str)], image: &str) -> ContainerRecord {
        let mut r = ContainerRecord::default();
        r.runtime.container_name = name.into();
        r.runtime.container_image_name = image.into();
        r.k8s.container_name = name.into();
        r.k8s.namespace = ns.into();
        r.k8s.pod_name = pod.into();
        r.k8s.pod_labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        r
    }

    fn select(args: &[&str]) -> ContainerSelector {
        use clap::Parser;
        #[derive(Parser)]
        struct Cmd {
            #[command(flatten)]
            flags: SelectorFlags,
        }
        let mut argv = vec!["ig"];
        argv.extend_from_slice(args);
        Cmd::try_parse_from(argv).expect("valid flags").flags.selector()
    }

    #[test]
    fn names_are_a_list_with_exclusions() {
        let web = record("web", "prod", "web-1", &[], "");
        let sidecar = record("sidecar", "prod", "web-1", &[], "");
        let db = record("db", "prod", "db-1", &[], "");
        let s = select(&["-c", "web,sidecar"]);
        assert!(s.matches(&web) && s.matches(&sidecar) && !s.matches(&db));
        let s = select(&["-c", "!sidecar"]);
        assert!(s.matches(&web) && !s.matches(&sidecar) && s.matches(&db));
        let s = select(&["-c", "web,!sidecar"]);
        assert!(s.matches(&web) && !s.matches(&sidecar) && !s.matches(&db));
        assert!(select(&[]).is_empty() && select(&[]).matches(&db));
        assert!(NameList::parse("a,,b").is_err() && NameList::parse("!").is_err());
    }

    #[test]
    fn kubernetes_fields_all_hold_together() {
        let a = record("app", "prod", "web-1", &[("app", "web"), ("tier", "front")], "");
        let b = record("app", "dev", "web-2", &[("app", "web")], "");
        let c = record("app", "prod", "db-1", &[("app", "db")], "");
        let s = select(&["--k8s-namespace", "prod", "--k8s-selector", "app=web"]);
        assert!(s.matches(&a) && !s.matches(&b) && !s.matches(&c));
        let s = select(&["--k8s-namespace", "!dev", "--k8s-podname", "web-1,db-1"]);
        assert!(s.matches(&a) && !s.matches(&b) && s.matches(&c));
        assert!(select(&["--k8s-containername", "app"]).matches(&b));
        assert!(!select(&["--k8s-containername", "other"]).matches(&b));
    }

    #[test]
    fn label_selectors_follow_kubernetes() {
        let labels: BTreeMap<String, String> =
            [("app", "web"), ("tier", "front")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let holds = |s: &str| LabelSelector::parse(s).unwrap().matches(&labels);
        assert!(holds("app=web") && holds("app==web") && holds("app=web,tier=front"));
        assert!(!holds("app=db") && !holds("app=web,tier=back"));
        assert!(holds("app!=db") && holds("env!=prod"), "!= holds where the label is unset");
        assert!(!holds("app!=web"));
        assert!(holds("tier") && !holds("env") && holds("!env") && !holds("!app"));
        for bad in ["", "=web", "a b=c", "!", "app=web,,x"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn images_match_by_repository_and_tag() {
        let m = image_matches;
        assert!(m("nginx", "docker.io/library/nginx:1.27"));
        assert!(m("library/nginx", "docker.io/library/nginx:1.27"));
        assert!(m("nginx:1.27", "docker.io/library/nginx:1.27"));
        assert!(!m("nginx:1.26", "docker.io/library/nginx:1.27"));
        assert!(!m("ginx", "docker.io/library/nginx:1.27"), "at a path boundary only");
        assert!(m("registry:5000/team/app", "registry:5000/team/app:v2"));
        assert!(m("app@sha256:ab", "registry:5000/team/app@sha256:ab"));
        assert!(!m("app@sha256:cd", "registry:5000/team/app@sha256:ab"));
        assert!(m("localhost/ig-busybox:latest", "localhost/ig-busybox:latest"));
        let img = record("x", "", "", &[], "docker.io/library/nginx:1.27");
        assert!(select(&["--runtime-containerimage", "nginx"]).matches(&img));
        assert!(!select(&["--runtime-containerimage", "!nginx"]).matches(&img));
    }
}
