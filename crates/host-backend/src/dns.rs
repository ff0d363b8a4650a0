//! The device's name resolver: lwIP's two DNS server slots, backed by hickory-resolver.
//!
//! A board asks the servers in its two slots (`net.dns.setdnsserver`), nothing else. On a desktop
//! the useful default is the host's own resolver configuration, so a [`Resolver`] has two modes:
//! - **host** (from boot until the script or `--dns` sets a server): the host's `/etc/resolv.conf`
//!   (or the platform's equivalent) and its hosts file; the slots report the host's first two
//!   IPv4 servers, as a board reports the servers its DHCP lease gave it;
//! - **explicit** (after `set_server`): queries go to the servers in the slots, for real, and the
//!   hosts file is not consulted (a board has none).
//!
//! Names pinned with `--resolve` answer without asking anyone, in both modes. Every lookup has a
//! bounded budget ([`Budget`]) and ends with an address or `None`, never an error: the firmware's
//! callback gets an IP or nil. The hickory resolver is built lazily and rebuilt after a server
//! changes; lookups already in flight finish on the old one.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// The standard DNS port, which `setdnsserver`'s servers are asked on unless `--dns-port` says
/// otherwise.
pub const DNS_PORT: u16 = 53;

/// How long a lookup may take before it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Per query sent to a server.
    pub timeout: Duration,
    /// Retries after the first query (hickory's `attempts`: total ≈ timeout × (attempts + 1)).
    pub attempts: usize,
    /// Hard limit for the whole lookup, whatever the servers do.
    pub limit: Duration,
}

impl Budget {
    /// Real time: a dead server gives nil after about 4 s (lwIP gives up after about 7 s per
    /// server, 14 s with two; the sim is a little quicker so test runs stay short).
    pub const REAL: Budget = Budget {
        timeout: Duration::from_secs(2),
        attempts: 1,
        limit: Duration::from_secs(5),
    };
    /// Virtual time: a pending query stops the clock from jumping, so a dead server must fail fast
    /// or it would hold a whole simulated hour back in real seconds.
    pub const QUICK: Budget = Budget {
        timeout: Duration::from_millis(300),
        attempts: 1,
        limit: Duration::from_secs(1),
    };
}

/// How the resolver starts at boot.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// `--dns IP`: server 0 from boot (explicit mode from the start).
    pub server: Option<IpAddr>,
    /// The port servers in the slots are asked on (`--dns-port`, default 53).
    pub port: u16,
    /// `--resolve NAME=IP`: answers that need no server.
    pub pins: Vec<(String, IpAddr)>,
    pub budget: Budget,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions {
            server: None,
            port: DNS_PORT,
            pins: Vec::new(),
            budget: Budget::REAL,
        }
    }
}

/// lwIP's DNS client: two server slots, a pin list, and the hickory resolver behind them.
pub struct Resolver {
    slots: [Option<IpAddr>; 2],
    explicit: bool,
    port: u16,
    pins: HashMap<String, IpAddr>,
    budget: Budget,
    system: Option<(ResolverConfig, ResolverOpts)>,
    built: Option<TokioResolver>,
}

/// How a name is compared with the pins: case-insensitive, without the root dot.
fn pin_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Resolver {
    /// Reads the host's resolver configuration (if it has one) and applies the boot options.
    pub fn new(opts: DnsOptions) -> Self {
        let system = hickory_resolver::system_conf::read_system_conf().ok();
        let mut slots = [None, None];
        if let Some((conf, _)) = &system {
            let mut v4 = conf
                .name_servers()
                .iter()
                .map(|ns| ns.ip)
                .filter(IpAddr::is_ipv4);
            slots = [v4.next(), v4.next()];
        }
        let mut r = Resolver {
            slots,
            explicit: false,
            port: opts.port,
            pins: opts.pins.iter().map(|(n, ip)| (pin_key(n), *ip)).collect(),
            budget: opts.budget,
            system,
            built: None,
        };
        if let Some(ip) = opts.server {
            r.set_server(0, ip);
        }
        r
    }

    /// What slot `idx` (0 or 1) holds: the host's server in host mode, the one set otherwise.
    pub fn server(&self, idx: usize) -> Option<IpAddr> {
        self.slots.get(idx).copied().flatten()
    }

    /// Puts `ip` in slot `idx` (0 or 1; others are ignored, as lwIP ignores them). From now on
    /// queries go to the slots' servers.
    pub fn set_server(&mut self, idx: usize, ip: IpAddr) {
        if let Some(slot) = self.slots.get_mut(idx) {
            *slot = Some(ip);
            self.explicit = true;
            self.built = None;
        }
    }

    /// True once a server was set: the host's configuration is no longer used.
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    fn options(&self, mut o: ResolverOpts) -> ResolverOpts {
        o.timeout = self.budget.timeout;
        o.attempts = self.budget.attempts;
        // The ESP8266 asks for A records only, and lwIP keeps no answer cache.
        o.ip_strategy = LookupIpStrategy::Ipv4Only;
        o.cache_size = 0;
        o.use_hosts_file = if self.explicit {
            ResolveHosts::Never
        } else {
            ResolveHosts::Always
        };
        o
    }

    fn build(&self) -> Option<TokioResolver> {
        let (config, opts) = if self.explicit {
            let servers = self
                .slots
                .iter()
                .flatten()
                .map(|ip| {
                    let mut c = ConnectionConfig::udp();
                    c.port = self.port;
                    NameServerConfig::new(*ip, true, vec![c])
                })
                .collect();
            (
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        } else {
            self.system.clone().unwrap_or_else(|| {
                (
                    ResolverConfig::from_name_servers(Vec::new()),
                    ResolverOpts::default(),
                )
            })
        };
        let mut b = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *b.options_mut() = self.options(opts);
        b.build().ok()
    }

    /// Looks `name` up: its first IPv4 address, or `None` when it has none, the servers say it
    /// does not exist, or the budget runs out. The future holds no borrow of the resolver.
    pub fn lookup_v4(&mut self, name: &str) -> impl Future<Output = Option<Ipv4Addr>> + 'static {
        let pinned = self.pins.get(&pin_key(name)).copied();
        if pinned.is_none() && self.built.is_none() {
            self.built = self.build();
        }
        let resolver = self.built.clone();
        // lwIP sends the name as it is; hickory would try search domains on a relative name.
        let query = if self.explicit && !name.ends_with('.') {
            format!("{name}.")
        } else {
            name.to_string()
        };
        let limit = self.budget.limit;
        async move {
            if let Some(ip) = pinned {
                return match ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                };
            }
            let resolver = resolver?;
            let lookup = resolver.lookup_ip(query);
            let answer = tokio::time::timeout(limit, lookup).await.ok()?.ok()?;
            answer.iter().find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
        }
    }
}

#[cfg(test)]
mod tests;
