"""What enters: the producer API, row validation (in helper processes for big
campaigns), CSV files, and the dry run that prices a file without Redis."""
