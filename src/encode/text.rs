//! Text helpers shared by the encoders.
