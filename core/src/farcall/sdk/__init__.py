"""The farcall SDK: the Client of the User Guide, its Batch, and its errors."""
