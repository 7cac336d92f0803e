//! `wharf bootstrap`: plans and applies the cluster around wharf (swarm, Ceph,
//! Consul, monitoring, backups).
