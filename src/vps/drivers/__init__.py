"""Hypervisor drivers behind one typed contract (`vps.drivers.base.HypervisorDriver`)."""
