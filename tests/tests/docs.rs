//! Shell completions and man pages: made from the same clap definitions as
//! the binaries, checked with the shells themselves and against the gadget
//! registry.

use std::process::Command;

use tests::{binary, unique};

fn completion(bin: &str, shell: &str) -> String {
    let out = Command::new(binary(bin)).args(["completion", shell]).output().unwrap();
    assert!(out.status.success(), "{bin} completion {shell}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn shell(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (install/deps.sh installs it): {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What bash's completion function of `bin` offers for `words` (the last
/// one being completed), called as bash calls it: command, word, previous word.
fn bash_completes(bin: &str, words: &str) -> Vec<String> {
    let script = std::env::temp_dir().join(unique("completion.bash"));
    std::fs::write(&script, completion(bin, "bash")).unwrap();
    let n = words.split_whitespace().count() - 1;
    let program = format!(
        "source {}; COMP_WORDS=({words}); COMP_CWORD={n}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _{bin} {bin} \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = shell("bash", &["-c", &program]);
    let _ = std::fs::remove_file(&script);
    out.lines().map(String::from).collect()
}

#[test]
fn bash_completes_gadgets_and_their_flags() {
    assert!(bash_completes("ig", "ig trace ex").contains(&"exec".to_string()));
    assert!(bash_completes("ig", "ig trace exec --k8s-se").contains(&"--k8s-selector".to_string()));
    assert!(bash_completes("ig", "ig snapshot proc").contains(&"process".to_string()));
    assert!(bash_completes("gadgetctl", "gadgetctl trace op").contains(&"open".to_string()));
    assert!(bash_completes("gadgetctl", "gadgetctl --remote").contains(&"--remote-address".to_string()));
}

#[test]
fn fish_and_zsh_read_their_scripts() {
    for bin in ["ig", "gadgetctl"] {
        let fish = std::env::temp_dir().join(unique("completion.fish"));
        std::fs::write(&fish, completion(bin, "fish")).unwrap();
        let offered =
            shell("fish", &["-c", &format!("source {}; complete -C '{bin} trace ex'", fish.display())]);
        assert!(offered.lines().any(|l| l.starts_with("exec\t")), "fish offers {offered:?}");
        let zsh = std::env::temp_dir().join(unique("completion.zsh"));
        std::fs::write(&zsh, completion(bin, "zsh")).unwrap();
        shell("zsh", &["-n", zsh.to_str().unwrap()]);
        assert!(completion(bin, "zsh").contains("--k8s-selector"));
        let _ = (std::fs::remove_file(&fish), std::fs::remove_file(&zsh));
    }
}

#[test]
fn man_pages_cover_every_gadget() {
    let dir = std::env::temp_dir().join(unique("man1"));
    let out = Command::new(binary("ig")).args(["man", "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = |name: &str| {
        std::fs::read_to_string(dir.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no page {name}.1: {e}"))
    };
    assert!(page("ig").contains(".TH ig 1"));
    for g in tracer::gadgets::all() {
        let name = format!("ig-{}", g.words().join("-"));
        let text = page(&name);
        assert!(text.contains(&format!(".TH {name} 1")), "{name}.1 is a man page");
        assert!(text.contains("k8s\\-selector"), "{name}.1 lists the common flags");
    }
    assert!(page("ig-trace-exec").contains("ignore\\-errors"), "and the gadget's own");
    let out =
        Command::new(binary("gadgetctl")).args(["man", "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(page("gadgetctl").contains("remote\\-address"));
    assert!(page("gadgetctl-trace-exec").contains(".TH gadgetctl-trace-exec 1"));
    let _ = std::fs::remove_dir_all(&dir);
}
