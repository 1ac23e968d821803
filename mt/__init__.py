"""mt: RNN encoder-decoder machine translation with pluggable attention."""
