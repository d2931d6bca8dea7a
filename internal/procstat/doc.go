// Package procstat reads what benchmarks report about their own process:
// the CPU time it used, which moves far less than rates do on a shared
// machine.
package procstat
