from piwarden.cli import main

main()
