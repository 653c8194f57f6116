[broken
