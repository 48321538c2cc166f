"""What to bring from the backroom to the sales floor: GTINs below their floor target."""
