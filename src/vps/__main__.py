from vps.cli.main import main

main()
