"""One thin Hydra (or argparse) entry point per command: mt-train, mt-evaluate, mt-translate,
mt-data, mt-report; `common` has what they share (config folder, resolvers, error handling).
Library code never imports from here.
"""
