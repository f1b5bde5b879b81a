//! The local doors: every console unit of the image (getty, serial-getty,
//! console-getty, container-getty, with their drop-ins), systemd's debug
//! shell, the emergency and rescue shells, and sysvinit's inittab, read
//! from the files systemd and init would read, and what each one asks of
//! whoever sits at it.
//!
//! A getty that logs someone in by itself (`--autologin`), starts another
//! program than login(1), or has login(1) skip authentication (`-f`), the
//! debug shell enabled, or an emergency shell that does not ask root's
//! password (`SYSTEMD_SULOGIN_FORCE=1`, a plain shell) lets a person in with
//! no authenticator at all.
//!
//! So does a kernel command line that asks for a shell: systemd's debug
//! shell (`systemd.debug_shell`), a shell as init (`init=/bin/sh`), or a
//! shell in the initramfs (`break`, `rd.break`, `rd.shell`). It is read
//! where the next boot takes it from (GRUB's defaults and grub.cfg,
//! extlinux.conf, systemd-boot's entries, `/etc/kernel/cmdline`, the
//! Raspberry Pi's cmdline.txt) and, on a booted device, from
//! /proc/cmdline (in a container that is the host's, so it is not read).

use std::path::{Path, PathBuf};

/// Where systemd looks for units, most important first (`/etc` overrides
/// `/run`, which overrides the vendor directories).
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The console and shell units judged, by name (templates and the units
/// instantiated from them in /etc).
const GETTY_TEMPLATES: &[&str] = &[
    "getty@",
    "serial-getty@",
    "container-getty@",
    "autovt@",
    "console-getty",
];

/// One door and what was found about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// "getty@tty1.service", "debug-shell.service", "/etc/inittab:12".
    pub name: String,
    /// The files read for it (unit and drop-ins).
    pub files: Vec<PathBuf>,
    /// How it lets someone in, or `None` when it asks for login and password.
    pub bypass: Option<String>,
    /// What it runs (its command line, or whether it is enabled), for the
    /// evidence.
    pub runs: String,
}

/// Every console door of the image.
pub fn survey() -> Vec<Door> {
    let mut doors = Vec::new();
    for unit in getty_units() {
        doors.push(getty_door(&unit));
    }
    doors.push(debug_shell());
    for unit in ["emergency.service", "rescue.service"] {
        if let Some(door) = emergency_shell(unit) {
            doors.push(door);
        }
    }
    doors.extend(inittab(Path::new("/etc/inittab")));
    doors.extend(
        kernel_command_lines()
            .into_iter()
            .map(|(source, line)| Door {
                name: format!("kernel command line ({})", source.display()),
                bypass: shell_on_command_line(&line),
                files: vec![source],
                runs: line,
            }),
    );
    doors
}

/// The kernel command lines of the image: every place a boot takes one
/// from, each line found with the file it is in, and the running kernel's
/// (/proc/cmdline) when the suite runs on the booted device itself.
pub fn kernel_command_lines() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    if booted_here() {
        if let Ok(line) = std::fs::read_to_string("/proc/cmdline") {
            found.push((PathBuf::from("/proc/cmdline"), line.trim().to_owned()));
        }
    }
    let mut grub_defaults = vec![PathBuf::from("/etc/default/grub")];
    grub_defaults.extend(files_in("/etc/default/grub.d", ".cfg"));
    for file in grub_defaults {
        for line in lines_of(&file) {
            let line = line.trim();
            for key in ["GRUB_CMDLINE_LINUX=", "GRUB_CMDLINE_LINUX_DEFAULT="] {
                if let Some(value) = line.strip_prefix(key) {
                    found.push((file.clone(), value.trim_matches(['"', '\'']).to_owned()));
                }
            }
        }
    }
    let mut keyed: Vec<(PathBuf, &str)> = vec![
        (PathBuf::from("/boot/grub/grub.cfg"), "linux"),
        (PathBuf::from("/boot/extlinux/extlinux.conf"), "append"),
        (PathBuf::from("/extlinux/extlinux.conf"), "append"),
    ];
    for dir in ["/boot/loader/entries", "/efi/loader/entries"] {
        keyed.extend(files_in(dir, ".conf").into_iter().map(|f| (f, "options")));
    }
    for (file, key) in keyed {
        for line in lines_of(&file) {
            let mut words = line.split_whitespace();
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case(key)) {
                // grub.cfg's `linux` names the kernel first.
                let args: Vec<&str> = words.skip(usize::from(key == "linux")).collect();
                found.push((file.clone(), args.join(" ")));
            }
        }
    }
    for file in [
        "/etc/kernel/cmdline",
        "/boot/cmdline.txt",
        "/boot/firmware/cmdline.txt",
    ] {
        if let Ok(text) = std::fs::read_to_string(file) {
            found.push((PathBuf::from(file), text.trim().to_owned()));
        }
    }
    found
}

/// Does the suite run on the booted system itself, so that /proc/cmdline is
/// the image's? Not in a container (systemd-nspawn and others say so in
/// /run/systemd/container), and only when PID 1 is an init (a namespace's
/// first process is not).
fn booted_here() -> bool {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    !Path::new("/run/systemd/container").exists() && matches!(comm.trim(), "systemd" | "init")
}

/// Why a kernel command line lets someone in without a password, if it
/// does.
pub fn shell_on_command_line(line: &str) -> Option<String> {
    const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "busybox", "zsh", "ksh"];
    let mut found = Vec::new();
    for word in line.split_whitespace() {
        let (key, value) = word
            .split_once('=')
            .map_or((word, None), |(k, v)| (k, Some(v)));
        let off = value.is_some_and(|v| matches!(v, "0" | "no" | "false" | "off"));
        match key {
            "systemd.debug_shell" | "systemd.debug-shell" if !off => found.push(format!(
                "`{word}`: systemd's debug shell, a root shell with no password (tty9 unless the value names another)"
            )),
            "init" => {
                let program = value.unwrap_or_default().rsplit('/').next().unwrap_or_default();
                if SHELLS.contains(&program) {
                    found.push(format!(
                        "`{word}`: the kernel starts a shell as root instead of init, nobody logs in"
                    ));
                }
            }
            "break" | "rd.break" => found.push(format!(
                "`{word}`: a root shell in the initramfs, no password asked"
            )),
            "rd.shell" if !off => found.push(format!(
                "`{word}`: a root shell in the initramfs when the boot fails, no password asked"
            )),
            _ => {}
        }
    }
    (!found.is_empty()).then(|| found.join("; "))
}

/// The regular files in `dir` whose name ends in `suffix`, sorted.
fn files_in(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The lines of a file; none when it cannot be read.
fn lines_of(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The getty units: the templates every image has, and every instance or
/// copy named after them in the unit directories (getty@tty1.service,
/// a drop-in directory getty@ttyS0.service.d, …).
fn getty_units() -> Vec<String> {
    let mut names: Vec<String> = GETTY_TEMPLATES
        .iter()
        .map(|t| format!("{t}.service"))
        .collect();
    for dir in UNIT_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unit = name.strip_suffix(".d").unwrap_or(&name).to_owned();
            if unit.ends_with(".service") && unit.contains("getty") && !names.contains(&unit) {
                names.push(unit);
            }
        }
    }
    names.sort();
    names
}

/// The unit file systemd uses for `unit` (an instance falls back to its
/// template), and every drop-in of the unit and of its template, in the
/// order systemd applies them.
fn unit_files(unit: &str) -> Vec<PathBuf> {
    // getty@tty1.service -> getty@.service (the template of an instance).
    let template = unit.split_once('@').and_then(|(base, rest)| {
        let (_, kind) = rest.rsplit_once('.')?;
        let template = format!("{base}@.{kind}");
        (template != unit).then_some(template)
    });
    let mut files = Vec::new();
    let main = [Some(unit.to_owned()), template.clone()]
        .into_iter()
        .flatten()
        .find_map(|name| {
            UNIT_DIRS
                .iter()
                .map(|d| Path::new(d).join(&name))
                .find(|p| p.is_file())
        });
    files.extend(main);
    let mut dropins: Vec<PathBuf> = Vec::new();
    for name in [template, Some(unit.to_owned())].into_iter().flatten() {
        for dir in UNIT_DIRS.iter().rev() {
            let Ok(entries) = std::fs::read_dir(Path::new(dir).join(format!("{name}.d"))) else {
                continue;
            };
            let mut confs: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            confs.sort();
            dropins.extend(confs);
        }
    }
    files.extend(dropins);
    files
}

/// The `[Service]` settings of a unit's files as systemd merges them: an
/// empty `ExecStart=` drops the ones before it; `Environment=` lines add up.
fn service_settings(files: &[PathBuf]) -> (Vec<String>, Vec<String>) {
    let mut exec = Vec::new();
    let mut env = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut in_service = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            if !in_service {
                continue;
            }
            match line.split_once('=') {
                Some(("ExecStart", "")) => exec.clear(),
                Some(("ExecStart", v)) => exec.push(v.trim().to_owned()),
                Some(("Environment", v)) => env.push(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    (exec, env)
}

fn getty_door(unit: &str) -> Door {
    let files = unit_files(unit);
    let (exec, _) = service_settings(&files);
    let runs = exec.join(" ; ");
    let bypass = exec.iter().find_map(|line| getty_bypass(line));
    Door {
        name: unit.to_owned(),
        files,
        bypass,
        runs,
    }
}

/// How a getty command line lets someone in without an authenticator.
pub fn getty_bypass(command: &str) -> Option<String> {
    let words: Vec<&str> = command
        .trim_start_matches(['-', '@', ':', '+', '!'])
        .split_whitespace()
        .collect();
    let value = |i: usize, word: &str| -> String {
        word.split_once('=')
            .map(|(_, v)| v.to_owned())
            .or_else(|| words.get(i + 1).map(|v| (*v).to_owned()))
            .unwrap_or_default()
    };
    for (i, word) in words.iter().enumerate() {
        let flag = word.split_once('=').map_or(*word, |(f, _)| f);
        match flag {
            "--autologin" | "-a" => {
                return Some(format!(
                    "logs {} in with no authentication (--autologin)",
                    value(i, word)
                ))
            }
            "--skip-login" | "-n" => {
                return Some("does not ask for a login name (--skip-login)".to_owned())
            }
            "--login-program" | "-l" => {
                let program = value(i, word);
                if !matches!(program.rsplit('/').next(), Some("login") | Some("")) {
                    return Some(format!("runs {program} instead of login (--login-program)"));
                }
            }
            "--login-options" | "-o" => {
                let options = value(i, word);
                if options
                    .split_whitespace()
                    .any(|o| o.trim_matches(['\'', '"']) == "-f")
                {
                    return Some(format!(
                        "has login skip authentication (--login-options {options}: -f)"
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// systemd's debug shell: a root shell on tty9 with no password, started
/// early at boot when enabled.
fn debug_shell() -> Door {
    let unit = "debug-shell.service";
    let wants = enabled_by(unit);
    Door {
        name: unit.to_owned(),
        files: unit_files(unit),
        bypass: (!wants.is_empty()).then(|| {
            format!(
                "is enabled ({}): a root shell on tty9 with no password",
                wants
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        runs: if wants.is_empty() {
            "not enabled (no .wants or .requires link)".to_owned()
        } else {
            "enabled".to_owned()
        },
    }
}

/// The links that enable `unit` (`*.wants/UNIT`, `*.requires/UNIT` in /etc).
fn enabled_by(unit: &str) -> Vec<PathBuf> {
    let mut links = Vec::new();
    for dir in ["/etc/systemd/system", "/run/systemd/system"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".wants") || name.ends_with(".requires") {
                let link = entry.path().join(unit);
                if link.symlink_metadata().is_ok() {
                    links.push(link);
                }
            }
        }
    }
    links
}

/// The emergency or rescue shell: it must ask for root's password
/// (sulogin), not open a shell by itself.
fn emergency_shell(unit: &str) -> Option<Door> {
    let files = unit_files(unit);
    if files.is_empty() {
        return None;
    }
    let (exec, env) = service_settings(&files);
    let runs = exec.join(" ; ");
    let forced = env.iter().any(|e| {
        e.split_whitespace()
            .any(|kv| kv.trim_matches('"') == "SYSTEMD_SULOGIN_FORCE=1")
    });
    let bypass = if forced {
        Some("sets SYSTEMD_SULOGIN_FORCE=1: a root shell without root's password".to_owned())
    } else if !exec.is_empty() && !exec.iter().any(|l| l.contains("sulogin")) {
        Some(format!("runs {runs}, not sulogin: no root password asked"))
    } else {
        None
    };
    Some(Door {
        name: unit.to_owned(),
        files,
        bypass,
        runs,
    })
}

/// sysvinit's getty lines (`id:runlevels:respawn:/sbin/getty …`).
fn inittab(path: &Path) -> Vec<Door> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .filter_map(|(n, line)| {
            let command = line.splitn(4, ':').nth(3)?;
            command.contains("getty").then(|| Door {
                name: format!("{}:{}", path.display(), n + 1),
                files: vec![path.to_path_buf()],
                bypass: getty_bypass(command),
                runs: command.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_kernel_command_line_that_asks_for_a_shell_is_a_door() {
        for line in [
            "root=/dev/sda2 ro quiet systemd.debug_shell",
            "root=/dev/sda2 systemd.debug-shell=tty3",
            "console=ttyS0 init=/bin/sh",
            "init=/usr/bin/busybox rw",
            "break=premount",
            "rd.break",
            "rd.shell",
        ] {
            assert!(shell_on_command_line(line).is_some(), "{line}");
        }
        for line in [
            "root=/dev/sda2 ro quiet",
            "systemd.debug_shell=0 rd.shell=0",
            "init=/lib/systemd/systemd",
            "console=tty0 systemd.unit=multi-user.target",
            "",
        ] {
            assert_eq!(shell_on_command_line(line), None, "{line}");
        }
    }
    use super::*;

    #[test]
    fn getty_options_that_skip_authentication_are_named() {
        let default = "-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM";
        assert_eq!(getty_bypass(default), None);
        assert!(
            getty_bypass("-/sbin/agetty --autologin root --noclear %I $TERM")
                .is_some_and(|b| b.contains("logs root in"))
        );
        assert!(getty_bypass("/sbin/agetty -a admin ttyS0 115200").is_some());
        assert!(getty_bypass("/sbin/agetty --autologin=root ttyS0").is_some());
        assert!(getty_bypass("/sbin/agetty -n -l /bin/bash tty1").is_some());
        assert!(getty_bypass("/sbin/agetty -l /bin/sh tty1").is_some_and(|b| b.contains("/bin/sh")));
        assert_eq!(getty_bypass("/sbin/agetty -l /bin/login tty1"), None);
        assert!(getty_bypass("/sbin/agetty -o '-f root' tty1").is_some());
    }

    #[test]
    fn a_drop_in_replaces_exec_start_and_environment_adds_up() {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("getty@.service");
        let dropin = dir.path().join("autologin.conf");
        std::fs::write(&unit, "[Unit]\nDescription=x\n[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM\nEnvironment=A=1\n").unwrap();
        std::fs::write(&dropin, "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root %I\nEnvironment=\"SYSTEMD_SULOGIN_FORCE=1\"\n").unwrap();
        let (exec, env) = service_settings(&[unit, dropin]);
        assert_eq!(exec, vec!["-/sbin/agetty --autologin root %I"]);
        assert_eq!(env.len(), 2);
    }
}
