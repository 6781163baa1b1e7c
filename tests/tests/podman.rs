//! podman 4.3 (CNI backend) runs a container on a wasmcni network, and
//! `podman rm` gives the lease and the veth back. podman runs inside the
//! test's host netns (entered with nsenter, which keeps /sys and its cgroup
//! mounts) with its own storage, config and network directories. conmon
//! starts `podman container cleanup` (which runs the CNI DEL) with only
//! `conmon_env_vars`, so the config passes the test's directories there too.

use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use wasmcni_e2e::{Lab, bin_dir, cache_dir, module_dir, unique};

struct Podman<'a> {
    lab: &'a Lab,
    dir: PathBuf,
}

impl Podman<'_> {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        let d = |s: &str| self.dir.join(s).display().to_string();
        Command::new("nsenter")
            .arg(format!("--net={}", self.lab.host.path()))
            .args(["podman", "--root", &d("root"), "--runroot", &d("runroot"), "--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("WASMCNI_MODULE_DIR", module_dir())
            .env("WASMCNI_CACHE_DIR", cache_dir())
            .output()
            .expect("podman")
    }

    fn must(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--force", "--time", "0", "--all"]);
        let _ = self.cmd(&["system", "reset", "--force"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup(lab: &Lab) -> Podman<'_> {
    let dir = std::env::temp_dir().join(unique("wcni-podman-"));
    std::fs::create_dir_all(dir.join("net.d")).unwrap();
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             conmon_env_vars = [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\", \"CONTAINERS_CONF={}\", \"WASMCNI_MODULE_DIR={}\", \"WASMCNI_CACHE_DIR={}\"]\n",
            bin_dir().display(),
            dir.join("net.d").display(),
            dir.join("containers.conf").display(),
            module_dir().display(),
            cache_dir().display(),
        ),
    )
    .unwrap();
    let mut plugin = lab.bridge_conf("1.0.0", json!({"subnet": "10.67.0.0/24"}));
    plugin.as_object_mut().unwrap().remove("cniVersion");
    plugin.as_object_mut().unwrap().remove("name");
    let conflist = json!({"cniVersion": "1.0.0", "name": lab.network, "plugins": [plugin]});
    std::fs::write(dir.join("net.d").join(format!("{}.conflist", lab.network)), conflist.to_string()).unwrap();

    // An image made offline: a rootfs holding Debian's busybox-static.
    let rootfs = dir.join("rootfs/bin");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "sleep", "ip"] {
        std::os::unix::fs::symlink("busybox", rootfs.join(applet)).unwrap();
    }
    let podman = Podman { lab, dir };
    let tar = podman.dir.join("rootfs.tar");
    wasmcni_e2e::must(&["tar", "-C", podman.dir.join("rootfs").to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."]);
    podman.must(&["import", tar.to_str().unwrap(), "wcni-busybox"]);
    podman
}

#[test]
fn podman_runs_a_container_on_a_wasmcni_network_and_rm_releases_it() {
    let lab = Lab::new();
    let podman = setup(&lab);
    let name = unique("wcpod");
    podman.must(&["run", "-d", "--name", &name, "--network", &lab.network, "wcni-busybox", "/bin/sleep", "300"]);

    let leases = lab.leases();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let addrs = podman.must(&["exec", &name, "ip", "-4", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("inet {}/24", leases[0])), "{addrs}");
    assert!(lab.leases().iter().all(|ip| lab.lease_content(ip).ends_with("\r\neth0")));
    assert!((0..3).any(|_| lab.host.ping(&leases[0])), "the host cannot reach the container");

    podman.must(&["rm", "--force", "--time", "0", &name]);
    assert!(lab.leases().is_empty(), "podman rm left the lease");
    let links = lab.host.must(&["ip", "-o", "link", "show", "type", "veth"]);
    assert!(links.trim().is_empty(), "podman rm left a veth: {links}");
}
