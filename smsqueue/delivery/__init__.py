"""What leaves: the per-process engine that claims chunks and sends them, its
loop thread, the provider concurrency limiters, and the retry policy."""
