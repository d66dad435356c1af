"""Stand-ins for the two systems the add-on talks to: a Splynx emulator and an
IPpay gateway simulator. Used by the demo, the tests and the benchmarks; never
shipped in the Debian package."""
