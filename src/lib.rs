//! Support shared by the examples, cross-process tests and benchmarks of disruptor-mp (not published).
