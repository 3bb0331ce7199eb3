"""The commands a user runs outside the pipeline: compose, translate, export, restore, plots_page."""
